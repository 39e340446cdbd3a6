"""Operator mistakes (bad config, missing file, unavailable model) as one family.

Defined in model/ so that the model package (which must not import curation) and curation
share one base class; `curation.errors` re-exports it. A CLI prints any of these as one line
and exits 2, never a traceback.
"""


class OperatorError(Exception):
    """A mistake the operator can fix; the message is one line that names the fix."""

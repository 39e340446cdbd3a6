"""Operator mistakes (bad config, missing file, unavailable model) as one family.

The CLI prints any of these as one line and exits 2, never a traceback; everything about a
single bad input row is data instead (a `rejections` row), never an exception.
"""


class OperatorError(Exception):
    """A mistake the operator can fix; the message is one line that names the fix."""

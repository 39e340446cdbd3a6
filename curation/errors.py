"""The two kinds of failure, kept apart.

Operator mistakes (bad config, missing file, unavailable model): an `OperatorError`, which the
CLI prints as one line with exit code 2, never a traceback. Its base class lives in
model/errors.py so the model package shares it without importing curation.

One bad input (a refused path, an unreadable video): a `Rejected` inside the stage that met
it, which the stage turns into data (a `rejections` row with the reason), never a crash.
"""
from model.errors import OperatorError

__all__ = ["OperatorError", "Rejected"]


class Rejected(Exception):
    """One input that cannot be processed: its `rejections` reason code and a detail."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail

"""Operator mistakes (bad config, missing file, unavailable model) as one family.

The CLI prints any of these as one line and exits 2, never a traceback; everything about a
single bad input row is data instead (a `rejections` row), never an exception. The base class
lives in model/errors.py so the model package shares it without importing curation.
"""
from model.errors import OperatorError

__all__ = ["OperatorError"]

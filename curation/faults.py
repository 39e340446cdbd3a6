"""Deterministic fault injection for the crash tests (issue 9 item 6).

`ALCHEMIST_FAULT=<point>` makes the process exit at once (no cleanup, no `finally`, like a
SIGKILL or a lost node) the first time it reaches that named point. Unset, `crash_point` is
one dictionary lookup.
"""
from __future__ import annotations

import os

FAULT_ENV = "ALCHEMIST_FAULT"
FAULT_EXIT_CODE = 86  # our choice: distinct from Python's 1 and the CLI's operator-error 2
POINTS = (
    "after_first_table",  # one table of a shard is in `<table>/`, the others are not
    "before_done_marker",  # every table is published, the shard's done marker is not written
    "before_success",  # every done marker is written, `_SUCCESS` is not
)


def crash_point(point: str) -> None:
    """Exit the process here when `ALCHEMIST_FAULT` names this point."""
    if point not in POINTS:
        raise ValueError(f"unknown fault point {point!r}; points are {POINTS}")
    if os.environ.get(FAULT_ENV) == point:
        os._exit(FAULT_EXIT_CODE)

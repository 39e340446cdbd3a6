"""Progress of a long `alchemist curate` run: shards done, rows per second, ETA (rich).

The rate counts only shards computed in this run: committed shards that a resumed run skips
are shown as done but do not inflate rows/s.
"""
from __future__ import annotations

import time
from pathlib import Path


def planned_rows(out: str | Path, shards: list[int]) -> dict[int, int]:
    """Manifest rows of each planned shard, from the plan's Parquet footers (no data read)."""
    import pyarrow.parquet as pq

    from curation.warehouse import part_name

    return {s: pq.read_metadata(Path(out) / "_plan" / f"{part_name(s)}.parquet").num_rows for s in shards}


class CurateProgress:
    """A rich progress bar over manifest rows; call `shard_done` after each shard."""

    def __init__(self, out: str | Path, shards: list[int], console=None):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.rows = planned_rows(out, shards)
        self.shards_total, self.shards_done = len(shards), 0
        self.computed_rows, self.computed_s, self.started = 0, 0.0, time.monotonic()
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("rows · {task.fields[rate]}"), TimeRemainingColumn(), console=console)
        self.task = self.bar.add_task(self._description(), total=sum(self.rows.values()), rate="-")

    def _description(self) -> str:
        return f"shards {self.shards_done}/{self.shards_total}"

    def rate(self) -> float:
        """Rows per second over the shards computed in this run (0 before the first)."""
        return self.computed_rows / self.computed_s if self.computed_s else 0.0

    def shard_done(self, shard: int, skipped: bool, seconds: float) -> None:
        self.shards_done += 1
        if not skipped:
            self.computed_rows += self.rows[shard]
            self.computed_s += seconds
        self.bar.update(self.task, advance=self.rows[shard], description=self._description(),
                        rate=f"{self.rate():.2f} rows/s" if self.computed_s else "-")

    def __enter__(self):
        self.bar.start()
        return self

    def __exit__(self, *exc):
        self.bar.stop()

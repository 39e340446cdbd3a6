"""`alchemist curate` progress: shards done, rows/s over computed shards only, ETA."""
import io

import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console

from curation.progress import CurateProgress, planned_rows
from curation.warehouse import part_name


def _plan(tmp_path, sizes):
    (tmp_path / "_plan").mkdir()
    for shard, n in enumerate(sizes):
        pq.write_table(pa.table({"input_row": list(range(n))}), tmp_path / "_plan" / f"{part_name(shard)}.parquet")
    return list(range(len(sizes)))


def test_rate_counts_computed_shards_only(tmp_path):
    shards = _plan(tmp_path, [3, 4, 5])
    assert planned_rows(tmp_path, shards) == {0: 3, 1: 4, 2: 5}
    out = io.StringIO()
    with CurateProgress(tmp_path, shards, console=Console(file=out, width=120, force_terminal=False)) as bar:
        bar.shard_done(0, skipped=True, seconds=0.0)  # committed by an earlier run
        assert bar.rate() == 0.0
        bar.shard_done(1, skipped=False, seconds=2.0)
        task = bar.bar.tasks[0]
        assert (task.completed, task.total, task.description) == (7, 12, "shards 2/3")
        assert bar.rate() == 2.0 and task.fields["rate"] == "2.00 rows/s"
    assert "shards 2/3" in out.getvalue()

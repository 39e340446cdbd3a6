"""CPU-seconds per clip of the stages that run on CPUs, measured on this machine: the offline
profile over the demo corpus, in-process, one stage at a time (process time, so every thread
a stage uses is counted)."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from curation.stage import OK


def _live_rows(rows: pa.Table) -> int:
    if "status" not in rows.column_names:
        return rows.num_rows
    return int(pc.sum(pc.equal(rows["status"].fill_null(OK), OK)).as_py() or 0)


def measure_cpu_seconds() -> dict[str, dict]:
    from curation.config import RunConfig
    from curation.cost.estimate import variant
    from curation.demo_data import build_demo_manifest
    from curation.execute import apply_stage
    from curation.profiles import build_stages
    from curation.runner import plan
    import pyarrow.parquet as pq

    config = RunConfig(profile="offline", shard_size=10_000)
    with tempfile.TemporaryDirectory() as tmp:
        manifest = build_demo_manifest(Path(tmp) / "inputs")
        dataset = Path(tmp) / "dataset"
        plan(manifest, dataset, config)
        rows = pq.read_table(sorted((dataset / "_plan").glob("*.parquet"))[0])
        result = {}
        for stage in build_stages(config):
            stage.setup()  # once per actor: not a per-clip cost
            clips, start = _live_rows(rows), time.process_time()
            rows = apply_stage(stage, rows)
            seconds = time.process_time() - start
            result[variant(stage)] = {"seconds_per_clip": seconds / max(clips, 1), "clips": clips}
    return result

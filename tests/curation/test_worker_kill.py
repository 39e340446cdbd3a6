"""A Ray worker SIGKILLed inside a stage (a preempted node, the OOM killer): the shard completes
and publishes the same tables as a run that was never killed (issue 9 item 6)."""
from __future__ import annotations

import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pytest

from curation import warehouse
from curation.execute import Limits, execute_local, execute_ray
from curation.route import route
from curation.stages.shots import ShotStage
from warehouse_schemas import registry

pytestmark = pytest.mark.slow


@dataclass
class KilledOnce(ShotStage):
    """The real shot stage, whose worker is SIGKILLed the first time it reaches row `b`."""

    marker: str = ""

    def process_batch(self, rows):
        if any(r["video_id"] == "b" for r in rows) and not os.path.exists(self.marker):
            Path(self.marker).touch()
            os.kill(os.getpid(), signal.SIGKILL)
        return super().process_batch(rows)


def _rounded(row: dict) -> dict:
    """Scores to 4 significant digits: a retried row runs in a smaller TransNetV2 batch, which
    changes float32 sums in the last bits, not the decision."""
    return {k: float(f"{v:.4g}") if isinstance(v, float) else v for k, v in row.items()}


def _rows(folder: Path) -> pa.Table:
    from curation.synthetic import moving_object_clip, write_video

    rows = []
    for seed, vid in enumerate("abc"):
        clip, _ = moving_object_clip(seed=seed, n_frames=24)
        src = str(write_video(clip, folder / f"{vid}.mp4", fps=24))
        rows.append(dict(input_key=vid, video_id=vid, source=src, caption="A ball rolls.", clip_key=f"{vid}:0-1000",
                         start_s=0.0, end_s=1.0, status="ok", reason=None, detail=None, rejected_by=None, notes=[]))
    return pa.Table.from_pylist(rows)


def test_a_worker_killed_inside_a_stage_is_replaced_and_the_shard_is_unchanged(tmp_path, ray_session):
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    rows = _rows(tmp_path)
    killed = KilledOnce(marker=str(tmp_path / "kill_marker"))
    work = execute_ray([killed], rows, Limits(max_row_crashes=2))
    assert (tmp_path / "kill_marker").exists(), "the worker was never killed"
    reference = execute_local([ShotStage()], rows)
    for out, stage, work_table in (("killed", killed, work), ("reference", ShotStage(), reference)):
        warehouse.write_shard(tmp_path / out, 0, route(work_table, [stage], {}), {"config": {}})
    for name in registry.TABLES:
        got, want = warehouse.read_table(tmp_path / "killed", name), warehouse.read_table(tmp_path / "reference", name)
        order = [(c, "ascending") for c in got.column_names if c in ("clip_key", "key", "name", "video_id")]
        got, want = got.sort_by(order).to_pylist(), want.sort_by(order).to_pylist()
        assert [_rounded(r) for r in got] == [_rounded(r) for r in want], name
    assert warehouse.read_table(tmp_path / "killed", "clip_scores").num_rows == 3

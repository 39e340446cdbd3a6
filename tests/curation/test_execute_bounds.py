"""Bounds on a shard's run: a hung row times out, a poison row is rejected after retries, the
shard goes on; warm stage actors run setup() once per worker, not once per shard."""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from curation.execute import Limits, execute_ray
from curation.stage import Outcome, Stage

pytestmark = pytest.mark.slow
LIMIT_S = 15.0  # the hung test's per-row limit


@pytest.fixture(autouse=True)
def _pickle_this_module(ray_session):
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _ball_video(folder: Path, seed: int = 0, frames: int = 24) -> str:
    from curation.synthetic import moving_object_clip, write_video

    clip, _ = moving_object_clip(seed=seed, n_frames=frames)
    return str(write_video(clip, folder / f"ball{seed}.mp4", fps=24))


def test_a_hung_decode_becomes_a_timeout_rejection_and_the_shard_completes(tmp_path):
    """A FIFO with no writer blocks FFmpeg's open() forever: the real shot stage hangs on it."""
    from curation.stages.shots import ShotStage

    good = _ball_video(tmp_path)
    fifo = tmp_path / "stalled.mp4"
    os.mkfifo(fifo)
    rows = pa.Table.from_pylist([
        dict(source=src, video_id=vid, clip_key=f"{vid}:0-1000", start_s=0.0, end_s=1.0,
             status="ok", reason=None, detail=None, rejected_by=None, notes=[])
        for vid, src in [("a", good), ("hung", str(fifo)), ("b", good)]])
    # Generous for a 1 s clip even on a loaded machine; the hung row waits it out twice
    # (in its batch, then alone), so the test takes about a minute.
    out = execute_ray([ShotStage()], rows, Limits(row_timeout_s=LIMIT_S))
    by_id = {r["video_id"]: r for r in out.to_pylist()}
    assert sorted(by_id) == ["a", "b", "hung"]  # every row accounted for, in one output each
    assert by_id["hung"]["reason"] == "shots_timeout"
    assert by_id["hung"]["rejected_by"] == "shots" and f"{LIMIT_S:g} s" in by_id["hung"]["detail"]
    for vid in ("a", "b"):
        assert by_id[vid]["shot_score"] is not None, (by_id[vid]["reason"], by_id[vid]["detail"])


@dataclass
class Poison(Stage):
    """Kills its own worker process on row 3, as a segfaulting decoder would."""

    name = "poison"
    writes = (pa.field("seen", pa.int64()),)

    def process_batch(self, rows):
        return [self.one(row) for row in rows]

    def one(self, row):
        if row["x"] == 3:
            os._exit(1)
        return Outcome(values={"seen": row["x"]})


def test_a_row_that_kills_its_worker_is_rejected_after_bounded_retries():
    rows = pa.table({"x": list(range(6)), "status": ["ok"] * 6})
    out = execute_ray([Poison()], rows, Limits(max_row_crashes=2)).sort_by("x")
    assert out["x"].to_pylist() == list(range(6))
    poisoned = out.filter(pc.equal(out["x"], 3)).to_pylist()[0]
    assert poisoned["reason"] == "poison_crashed" and "died 2 times" in poisoned["detail"]
    assert out.filter(pc.not_equal(out["x"], 3))["seen"].to_pylist() == [0, 1, 2, 4, 5]


def _counting(cls: type, log: Path) -> type:
    """`cls` whose setup() also appends this process's id to `log`."""

    def setup(self):
        with open(log, "a") as f:
            f.write(f"{self.name} {os.getpid()}\n")
        cls.setup(self)

    return type(cls.__name__, (cls,), {"setup": setup, "__module__": __name__})


def test_six_shards_run_each_model_stages_setup_once_per_worker(tmp_path, monkeypatch):
    from curation import config as config_module
    from curation.config import RunConfig
    from curation.runner import ensure_ray, plan, run_shard

    log = tmp_path / "setups.log"
    originals = {name: config_module.stage_class(name) for name in config_module.STAGE_CLASSES}
    monkeypatch.setattr(config_module, "stage_class", lambda name: _counting(originals[name], log))
    videos = [_ball_video(tmp_path, seed) for seed in range(6)]
    manifest = tmp_path / "m.csv"
    manifest.write_text("video,caption\n" + "".join(
        f"{v},A red ball rolls across the table.\n" for v in videos))
    config = RunConfig(profile="offline", shard_size=1, skip=["frames", "grounding", "faces",
                                                              "background"])
    shards = plan(manifest, tmp_path / "ds", config)
    assert len(shards) == 6
    ensure_ray()
    for shard in shards:  # as six Airflow shard tasks on one Ray head would
        assert not run_shard(tmp_path / "ds", shard, config).skipped
    setups: dict[str, list[str]] = {}
    for line in log.read_text().split("\n")[:-1]:
        stage, pid = line.split()
        setups.setdefault(stage, []).append(pid)
    assert sorted(setups) == ["entities", "ingest", "motion", "shots"]
    for stage, pids in setups.items():  # one actor per stage (resources.actors = 1)
        assert len(pids) == 1, f"{stage} setup ran {len(pids)} times over 6 shards"


@dataclass
class Threads(Stage):
    """Records the compute threads its actor runs with, and when its setup() started."""

    name = "threads"
    writes = (pa.field("torch_threads", pa.int64()), pa.field("omp", pa.string()))
    log: str = ""
    setup_s: float = 0.0

    def setup(self):
        import time

        with open(self.log, "a") as f:
            f.write(f"{self.name} {time.time()}\n")
        time.sleep(self.setup_s)

    def process_batch(self, rows):
        import torch

        return [Outcome(values={"torch_threads": torch.get_num_threads(),
                                "omp": os.environ.get("OMP_NUM_THREADS")}) for _ in rows]


@dataclass
class LaterThreads(Threads):
    name = "later_threads"
    writes = (pa.field("later_torch_threads", pa.int64()),)

    def process_batch(self, rows):
        import torch

        return [Outcome(values={"later_torch_threads": torch.get_num_threads()}) for _ in rows]


def test_actors_run_the_threads_their_stage_declares_and_set_up_at_once(tmp_path):
    """Ray scales the reservations down to fit 2 CPUs (and would set OMP_NUM_THREADS=1), but
    a stage that declares 2 CPUs computes on 2 threads; both stages' setup() start together,
    not the second one only when the first batch reaches it."""
    from curation.stage import Resources

    log, setup_s = tmp_path / "setups.log", 8.0
    stages = [Threads(log=str(log), setup_s=setup_s, resources=Resources(cpus=2.0)),
              LaterThreads(log=str(log), setup_s=setup_s, resources=Resources(cpus=0.5))]
    out = execute_ray(stages, pa.table({"x": [1, 2], "status": ["ok", "ok"]}))
    assert out["torch_threads"].to_pylist() == [2, 2] and out["omp"].to_pylist() == ["2", "2"]
    assert out["later_torch_threads"].to_pylist() == [1, 1]
    started = dict(line.split() for line in log.read_text().splitlines())
    assert abs(float(started["threads"]) - float(started["later_threads"])) < setup_s

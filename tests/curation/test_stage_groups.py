"""Stage groups: consecutive light stages share one warm actor, each keeping its own setup()
once per worker, its own rejections and its own per-row time limit."""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pytest

from curation.config import RunConfig
from curation.execute import Limits, execute_local, execute_ray
from curation.profiles import build_stages
from curation.stage import Outcome, Resources, Stage
from curation.stage_pool import stage_groups

HANG_LIMIT_S = 6.0  # the hung test's per-row limit: far above a toy row's milliseconds


def _names(stages: list[Stage]) -> list[str]:
    return [group.name for group in stage_groups(stages)]


def test_light_stages_share_an_actor_and_model_stages_keep_their_own():
    offline = build_stages(RunConfig(profile="offline"))
    assert _names(offline) == ["ingest", "shots", "motion+entities+frames+grounding+faces+background"]
    lite = build_stages(RunConfig(profile="lite"))  # GroundingDINO + SAM: a model of its own
    assert _names(lite) == ["ingest", "shots", "motion+entities+frames", "grounding", "faces+background"]
    full = build_stages(RunConfig(profile="full"))  # every model stage on a GPU
    assert _names(full) == ["ingest", "shots", "motion", "entities", "frames", "grounding", "faces",
                            "background"]
    groups = stage_groups(offline)
    assert [g.first for g in groups] == [0, 1, 2]
    assert groups[2].resources.cpus == 1.0  # its largest member's (grounding), not the sum


@dataclass
class Tag(Stage):
    """Writes a value; logs `<name> <pid>` on setup; rejects rows whose x is in `reject`."""

    name = "tag"
    writes = (pa.field("tagged", pa.int64()),)
    log: str = ""
    reject: tuple = ()

    def setup(self):
        with open(self.log, "a") as f:
            f.write(f"{self.name} {os.getpid()}\n")

    def process_batch(self, rows):
        return [Outcome.reject(f"{self.name}_says_no", "listed") if r["x"] in self.reject
                else Outcome(values={self.column(): r["x"]}) for r in rows]

    def column(self) -> str:
        return self.writes[0].name


@dataclass
class Check(Tag):
    name = "check"
    writes = (pa.field("checked", pa.int64()),)


@dataclass
class Hang(Tag):
    """Hangs (as a stuck decoder would) on rows whose x is in `hang`."""

    name = "hang"
    writes = (pa.field("hung", pa.int64()),)
    hang: tuple = ()

    def process_batch(self, rows):
        if any(r["x"] in self.hang for r in rows):
            time.sleep(3600)
        return super().process_batch(rows)


@dataclass
class Heavy(Tag):
    """A stage that declares 2 CPUs: never grouped."""

    name = "heavy"
    writes = (pa.field("heavy", pa.int64()),)
    resources: Resources = Resources(cpus=2.0)


def _setups(log: Path) -> dict[str, list[str]]:
    setups: dict[str, list[str]] = {}
    for line in log.read_text().splitlines():
        stage, pid = line.split()
        setups.setdefault(stage, []).append(pid)
    return setups


@pytest.fixture
def _pickled(ray_session):
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.mark.slow
def test_a_group_sets_each_stage_up_once_per_worker_and_keeps_each_stages_rejections(tmp_path, _pickled):
    log = str(tmp_path / "setups.log")
    stages = [Tag(log=log, reject=(2,)), Check(log=log, reject=(3,)), Heavy(log=log)]
    assert _names(stages) == ["tag+check", "heavy"]
    rows = pa.table({"x": list(range(6)), "status": ["ok"] * 6})
    for _ in range(3):  # three shards on one cluster
        out = execute_ray(stages, rows).sort_by("x")
    setups = _setups(Path(log))
    assert {stage: len(pids) for stage, pids in setups.items()} == {"tag": 1, "check": 1, "heavy": 1}
    assert setups["tag"] == setups["check"] != setups["heavy"]  # one process for the group
    by_x = {r["x"]: r for r in out.to_pylist()}
    assert (by_x[2]["rejected_by"], by_x[2]["reason"]) == ("tag", "tag_says_no")
    assert (by_x[3]["rejected_by"], by_x[3]["reason"]) == ("check", "check_says_no")
    assert by_x[3]["tagged"] == 3 and by_x[3]["checked"] is None  # the 2nd stage's verdict
    assert [by_x[x]["heavy"] for x in (0, 1, 4, 5)] == [0, 1, 4, 5]
    other = str(tmp_path / "local.log")
    local = execute_local([Tag(log=other, reject=(2,)), Check(log=other, reject=(3,)), Heavy(log=other)],
                          rows).sort_by("x")
    assert out.equals(local)


@pytest.mark.slow
def test_a_hang_in_a_grouped_stage_is_timed_out_and_its_actor_replaced(tmp_path, _pickled):
    log = str(tmp_path / "setups.log")
    stages = [Tag(log=log), Hang(log=log, hang=(1,))]
    assert _names(stages) == ["tag+hang"]
    rows = pa.table({"x": list(range(3)), "status": ["ok"] * 3})
    out = execute_ray(stages, rows, Limits(row_timeout_s=HANG_LIMIT_S)).sort_by("x")
    by_x = {r["x"]: r for r in out.to_pylist()}
    assert sorted(by_x) == [0, 1, 2]  # every row accounted for, once
    assert (by_x[1]["rejected_by"], by_x[1]["reason"]) == ("hang", "hang_timeout")
    assert f"{HANG_LIMIT_S:g} s" in by_x[1]["detail"] and by_x[1]["tagged"] == 1
    assert [(by_x[x]["tagged"], by_x[x]["hung"]) for x in (0, 2)] == [(0, 0), (2, 2)]
    # The batch's and then the row's time-out each replaced the actor (as for an ungrouped
    # stage): the only extra setup()s, of both members, each in the new process.
    setups = _setups(Path(log))
    assert setups["tag"] == setups["hang"] and len(set(setups["tag"])) == len(setups["tag"]) == 3


@dataclass
class NoWeights(Tag):
    name = "noweights"
    writes = (pa.field("never", pa.int64()),)

    def setup(self):
        raise ValueError("weights file is empty; write it again")


@pytest.mark.slow
def test_a_grouped_stage_whose_setup_fails_is_named_in_the_one_line(tmp_path, _pickled):
    from curation.stage_pool import StageSetupError

    stages = [Tag(log=str(tmp_path / "setups.log")), NoWeights()]
    with pytest.raises(StageSetupError) as failed:
        execute_ray(stages, pa.table({"x": [1], "status": ["ok"]}))
    assert str(failed.value) == ("stage 'noweights' failed in setup(): "
                                 "ValueError: weights file is empty; write it again")


def test_a_shard_is_cut_into_batches_no_larger_than_the_second_groups():
    from curation.execute import first_batch_rows

    offline = stage_groups(build_stages(RunConfig(profile="offline")))
    assert first_batch_rows(offline) == 8  # ingest asks 16, the shot detector 8 per call
    full = stage_groups(build_stages(RunConfig(profile="full")))
    assert first_batch_rows(full) == 16  # the GPU shot detector asks 32: ingest's 16 stand
    assert first_batch_rows(stage_groups([Tag()])) == 4 and first_batch_rows([]) == 0


@dataclass
class Slow(Tag):
    """The last group, slow: the tail a shard still has when the stages before it are done."""

    name = "slow"
    writes = (pa.field("slow", pa.int64()),)
    sleep_s: float = 0.0

    def process_batch(self, rows):
        time.sleep(self.sleep_s)
        return super().process_batch(rows)


@pytest.mark.slow
def test_a_shard_drains_once_its_batches_are_past_the_stages_before_its_last_group(tmp_path, _pickled):
    """`alchemist curate` starts the next shard then (runner.ShardTurn), not at the very end."""
    import threading

    import ray

    from curation.execute import run_on_actors

    log, tail_s = str(tmp_path / "setups.log"), 4.0
    draining, set_at = threading.Event(), []
    waiter = threading.Thread(target=lambda: set_at.append(draining.wait(60) and time.monotonic()))
    waiter.start()
    stages = [Heavy(log=log), Slow(log=log, sleep_s=tail_s)]
    refs = run_on_actors(stages, pa.table({"x": [1, 2], "status": ["ok", "ok"]}), Limits(), draining)
    ended = time.monotonic()
    waiter.join()
    assert set_at[0] and set_at[0] < ended - tail_s / 2  # set while the last group still ran
    assert sum(t.num_rows for t in ray.get(refs)) == 2

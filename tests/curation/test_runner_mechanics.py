"""The runner's contract with toy stages: routing, pass-through, shard publish, config errors."""
import sys
from dataclasses import dataclass

import pyarrow as pa
import pytest

from curation import warehouse
from curation.config import ConfigError, load_config
from curation.execute import apply_stage, execute_local, execute_ray
from curation.route import route
from curation.stage import Outcome, Stage, note


@dataclass
class ToyIngest(Stage):
    """Input 0 mod 5 is rejected; every other input becomes two candidate clips."""

    name = "ingest"
    level = "input"
    writes = (pa.field("input_key", pa.string()), pa.field("video_id", pa.string()),
              pa.field("source", pa.string()), pa.field("caption", pa.string()),
              pa.field("clip_key", pa.string()), pa.field("start_s", pa.float64()),
              pa.field("end_s", pa.float64()))

    def process_batch(self, rows):
        return [self.one(row) for row in rows]

    def one(self, row):
        base = dict(input_key=f"v{row['x']}", video_id=f"v{row['x']}", source=f"/v{row['x']}.mp4",
                    caption="a dog runs")
        if row["x"] % 5 == 0:
            return Outcome.reject("missing_file", "no such file", **base)
        return [Outcome(values={**base, "clip_key": f"v{row['x']}:{i}000-{i + 1}000",
                                "start_s": float(i), "end_s": i + 1.0}) for i in range(2)]


@dataclass
class ToyScore(Stage):
    """Scores every clip; rejects clips of inputs 0 mod 3; notes a missing 'hat' on frame 2 and
    an unusable background (no entity, no frame) on the rest."""

    name = "toyscore"
    writes = (pa.field("toy", pa.float32()), pa.field("toy_raw", pa.string()))
    scores = ("toy",)
    payload_column = "toy_raw"
    threshold: float = 0.5

    def process_batch(self, rows):
        return [self.one(row) for row in rows]

    def one(self, row):
        if row["start_s"] > 0 and row["video_id"] == "v7":
            raise ValueError("decoder exploded")
        value = 0.0 if int(row["video_id"][1:]) % 3 == 0 else 1.0
        if value < self.threshold:
            return Outcome.reject("too_low", "toy score under threshold", toy=value, toy_raw=f"raw{value}")
        return Outcome(values={"toy": value}, notes=[note("entity", "not_found", "no hat", "hat", 2),
                                                     note("background", "mask_too_large", "mask 80%")])


STAGES = [ToyIngest(), ToyScore()]
ROWS = pa.table({"x": list(range(10))})


def test_route_keeps_the_table_contract():
    tables = route(execute_local(STAGES, ROWS), STAGES, {"undesirable_filter": "both"})
    clips = tables["clips"].to_pylist()
    assert clips and all(c["undesirable_filter"] == "both" for c in clips)  # provenance: which filter ran
    rejections = tables["rejections"].to_pylist()
    inputs = [r for r in rejections if r["level"] == "input"]
    assert sorted(r["key"] for r in inputs) == ["v0", "v5"]
    clip_rejected = [r["key"] for r in rejections if r["level"] == "clip"]
    accepted = tables["clips"]["clip_key"].to_pylist()
    assert not set(clip_rejected) & set(accepted)
    assert len(clip_rejected) + len(accepted) == 16  # 8 inputs x 2 candidates
    errors = [r for r in rejections if r["reason"] == "toyscore_error"]
    assert [r["key"] for r in errors] == ["v7:1000-2000"] and "decoder exploded" in errors[0]["detail"]
    # every candidate has its score, except the one whose stage crashed before scoring it
    scored = set(tables["clip_scores"]["clip_key"].to_pylist())
    assert scored == (set(clip_rejected) | set(accepted)) - {"v7:1000-2000"}
    too_low = [r for r in rejections if r["reason"] == "too_low"]
    assert too_low and all(r["payload"] == "raw0.0" for r in too_low)
    assert all(r["payload"] is None for r in rejections if r["reason"] != "too_low")
    hat = [r for r in rejections if r["level"] == "entity"]
    assert hat and all(r["key"] == f"{r['clip_key']}/hat/frame2" and r["stage"] == "toyscore" for r in hat)
    assert all(r["detail"] == "no hat" and r["entity"] == "hat" and r["frame_index"] == 2 for r in hat)
    background = [r for r in rejections if r["level"] == "background"]
    assert len(background) == len(hat) and all(
        r["key"] == f"{r['clip_key']}/background" and r["detail"] == "mask 80%" and r["stage"] == "toyscore"
        and r["entity"] is None and r["frame_index"] is None for r in background)
    assert {v for v in tables["videos"]["video_id"].to_pylist()} == {f"v{i}" for i in range(10) if i % 5}


def test_rejected_rows_pass_later_stages_untouched():
    after_ingest = apply_stage(ToyIngest(), ROWS)
    out = apply_stage(ToyScore(), after_ingest)
    dead = out.filter(pa.compute.equal(out["rejected_by"], "ingest")).to_pylist()
    assert len(dead) == 2 and all(r["toy"] is None for r in dead)
    assert out.schema.field("toy").type == pa.float32()


def test_ray_execution_equals_in_process(ray_session):
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    local = execute_local(STAGES, ROWS)
    remote = execute_ray(STAGES, ROWS)
    key = [("input_key", "ascending"), ("clip_key", "ascending")]
    assert remote.sort_by(key).equals(local.sort_by(key))


def test_shard_publish_is_read_only_after_its_done_marker(tmp_path):
    tables = route(execute_local(STAGES, ROWS), STAGES, {})
    warehouse.write_shard(tmp_path, 0, tables, {"config": {}})
    (tmp_path / "clips").mkdir(exist_ok=True)
    # a half-published shard: its files are in place but the done marker is not
    import shutil

    shutil.copy(tmp_path / "clips" / "part-00000.parquet", tmp_path / "clips" / "part-00001.parquet")
    assert warehouse.committed_shards(tmp_path) == [0]
    assert warehouse.read_table(tmp_path, "clips").num_rows == tables["clips"].num_rows
    meta = warehouse.file_metadata(tmp_path / "clips" / "part-00000.parquet")
    assert meta["schema_version"] == "1" and meta["table"] == "clips"
    with pytest.raises(warehouse.DatasetError, match="not committed"):
        warehouse.commit(tmp_path, [0, 1], {"config": {}})
    success = warehouse.commit(tmp_path, [0], {"config": {"profile": "toy"}})
    assert success["counts"]["clips"] == tables["clips"].num_rows


def test_config_mistakes_are_one_line_errors(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text("profile: offline\nshard_sise: 3\n")
    with pytest.raises(ConfigError, match=r"unknown config key\(s\) \['shard_sise'\]"):
        load_config(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="unknown profile 'fast'"):
        load_config(None, "fast")
    bad.write_text("stages:\n  motoin: {}\n")
    with pytest.raises(ConfigError, match="unknown stage 'motoin'"):
        load_config(bad)


def test_a_dataset_cannot_be_resumed_with_other_settings(tmp_path):
    from curation.config import RunConfig
    from curation.runner import plan

    manifest = tmp_path / "m.csv"
    manifest.write_text("video,caption\n" + "".join(f"v{i}.mp4,A dog runs.\n" for i in range(5)))
    out = tmp_path / "ds"
    assert plan(manifest, out, RunConfig(shard_size=2)) == [0, 1, 2]
    assert plan(manifest, out, RunConfig(shard_size=2)) == [0, 1, 2]  # idempotent
    assert plan(manifest, out, RunConfig(shard_size=5)) == [0]  # nothing committed yet: re-plan
    (out / "_done").mkdir()
    (out / "_done" / "part-00000.json").write_text('{"shard": 0, "counts": {}}')
    with pytest.raises(ConfigError, match=r"settings.shard_size: 5 -> 2.*--new-version"):
        plan(manifest, out, RunConfig(shard_size=2))

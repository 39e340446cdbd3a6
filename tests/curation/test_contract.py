"""The contract checker and the balance, fed a sound dataset and one broken in each way they
know; key rounding at exact half milliseconds; per-actor CPU scaling (issue 9 item 7)."""
import re

import pyarrow as pa
import pytest

from curation import keys, warehouse
from curation.execute import cpu_requests
from curation.inspect import balance, contract_violations
from curation.stage import Resources, Stage

# Three manifest rows: `a` becomes an accepted clip, `b` a clip rejected by motion, `c` an
# input-level rejection. Entities belong to `a`; detections to both candidates.
A, B = "a:0-1000", "b:0-1000"


def _rejection(level: str, key: str, input_key: str, clip_key: str | None, reason: str) -> dict:
    return dict(key=key, input_key=input_key, clip_key=clip_key, level=level, stage="motion" if clip_key else "ingest",
                reason=reason, detail="", entity=None, frame_index=None, payload=None)


SOUND = {
    "clips": [(A, "a")],
    "rejections": [_rejection("clip", B, "b", B, "still_image"), _rejection("input", "c", "c", None, "missing_file")],
    "entities": [A],
    "detections": [A, B],
    "clip_scores": [A, B],
}


def _write(root, table_rows, spec: dict, manifest_rows: int = 3) -> None:
    tables = {
        "clips": table_rows("clips", len(spec["clips"]), clip_key=[c for c, _ in spec["clips"]],
                            input_key=[i for _, i in spec["clips"]]),
        "rejections": pa.Table.from_pylist(spec["rejections"], warehouse.registry.schema("rejections")),
    }
    for name in ("entities", "detections", "clip_scores"):
        rows = spec[name]
        first_key = warehouse.registry.schema(name).field(0).name
        extra = {} if first_key == "clip_key" else {first_key: [f"{c}/{name}{i}" for i, c in enumerate(rows)]}
        tables[name] = table_rows(name, len(rows), clip_key=rows, **extra)
    warehouse.write_shard(root, 0, tables, {"config": {}})
    (root / "_plan").mkdir()
    pa.parquet.write_table(pa.table({"input_row": list(range(manifest_rows))}), root / "_plan" / "part-00000.parquet")


def test_a_sound_dataset_balances(tmp_path, table_rows):
    _write(tmp_path, table_rows, SOUND)
    assert contract_violations(tmp_path) == []
    assert balance(tmp_path) == {
        "manifest_rows": 3, "input_rejections": 1, "inputs_with_candidates": 2, "candidate_clips": 2,
        "accepted_clips": 1, "clip_rejections": 1, "clips_also_rejected": 0, "unscored_candidates": 0}


BROKEN = {
    "clips: duplicate clip_keys": {"clips": [(A, "a"), (A, "a")]},
    "a clip has more than one clip-level rejection": {
        "rejections": SOUND["rejections"] + [_rejection("clip", B, "b", B, "slight_motion")]},
    "clips also rejected at clip level": {
        "rejections": SOUND["rejections"] + [_rejection("clip", A, "a", A, "still_image")]},
    "an input row has both candidate clips and an input-level rejection": {
        "rejections": SOUND["rejections"] + [_rejection("input", "a", "a", None, "missing_file")]},
    "entities: rows for clips not in `clips`": {"entities": [A, B]},
    "detections: rows for clips that are no candidate": {"detections": [A, B, "z:0-1000"]},
}


@pytest.mark.parametrize("problem", list(BROKEN), ids=lambda problem: re.sub(r"\W+", "_", problem).strip("_"))
def test_each_kind_of_broken_dataset_is_found(problem, tmp_path, table_rows):
    _write(tmp_path, table_rows, {**SOUND, **BROKEN[problem]})
    found = contract_violations(tmp_path)
    assert any(problem in p for p in found), found


def test_a_manifest_row_that_vanished_breaks_the_balance(tmp_path, table_rows):
    _write(tmp_path, table_rows, SOUND, manifest_rows=4)
    assert contract_violations(tmp_path) == ["manifest rows 4 != input rejections 1 + inputs with candidates 2"]
    assert balance(tmp_path)["manifest_rows"] == 4


def test_an_unscored_candidate_is_counted(tmp_path, table_rows):
    _write(tmp_path, table_rows, {**SOUND, "clip_scores": [A]})
    assert balance(tmp_path)["unscored_candidates"] == 1


@pytest.mark.parametrize("seconds, ms", [(0.0025, 3), (0.0005, 1), (1.0125, 1013), (2.0004999, 2000), (7.0, 7000)])
def test_keys_round_exact_half_milliseconds_up(seconds, ms):
    assert keys.to_ms(seconds) == ms  # round-half-even would give 2, 0 and 1012 for the first three
    assert keys.clip_key("v", seconds, 10.0) == f"v:{ms}-10000"


def test_input_keys_for_open_and_bad_times():
    assert keys.input_key({"video": "/x.mp4", "id": "v"}) == "v"
    assert keys.input_key({"id": "v", "start": 1.5, "end": None}) == "v:1500-end"
    assert keys.input_key({"id": "v", "start": None, "end": 2.0}) == "v:0-2000"
    assert keys.input_key({"id": "v", "start": 1.0, "end": 2.0, "problem": "bad_timestamps", "input_row": 4}) == "v#row4"
    assert keys.input_key({"video": "/x.mp4"}) == keys.video_id(None, "/x.mp4") != keys.video_id(None, "/y.mp4")
    assert keys.input_key({"id": "v", "start": 1.0, "end": 2.0}) == "v:1000-2000"
    assert keys.input_key({"id": "v", "start": float("nan"), "end": 2.0}) == "v:0-2000"
    assert keys.input_key({}) == keys.video_id(None, "") == keys.video_id("", "")
    assert keys.video_id("", "/x.mp4") == keys.video_id(None, "/x.mp4")  # an empty id is no id
    # a path that is not valid UTF-8 (surrogate-escaped by os.fsdecode) still gets a stable id
    assert keys.video_id(None, "/v\udcff.mp4") == keys.video_id(None, "/v\udcff.mp4") != keys.video_id(None, "/v.mp4")
    assert keys.child_key("c:0-1000", "red ball", "a/b", 2) == "c:0-1000/red_ball/a_b/2"


class _Asks(Stage):
    name = "asks"

    def __init__(self, cpus: float, actors: int):
        self.resources = Resources(cpus=cpus, actors=actors)


def test_cpu_requests_scale_down_only_when_the_stages_ask_for_more_than_the_cluster():
    stages = [_Asks(1.0, 2), _Asks(0.5, 1), _Asks(0.25, 2)]  # 3 CPUs asked in all
    assert cpu_requests(stages, 100.0) == [1.0, 0.5, 0.25]
    scaled = cpu_requests(stages, 2.0)
    assert scaled == pytest.approx([0.6, 0.3, 0.15])  # 0.9 x 2 CPUs over 3 asked
    assert sum(c * s.resources.actors for c, s in zip(scaled, stages)) == pytest.approx(1.8)
    assert cpu_requests([_Asks(0.0, 1)], 2.0) == [0.0]

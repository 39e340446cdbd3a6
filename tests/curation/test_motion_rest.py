"""The motion filter's second test of a corner model rejected for its spread: does its motion
also explain the pixels outside its inliers' hulls (`motion.moves_the_rest`)? A pan over a
photo whose corners cluster on one object is a still image; a mover over a flat wall, with or
without sensor noise, still passes."""
import cv2
import numpy as np
import pytest

from curation import synthetic
from curation import synthetic_motion as sm
from curation.stages import motion
from curation.stages.motion import MotionStage

SHIFT_PX = 2  # the camera's shift in the boundary tests: the stripes' width
H, W = 120, 160


def _one_object_pan(grain_sigma: float, speed: float, seed: int = 5) -> np.ndarray:
    """A fast pan over faint grain (a sky, a moon's surface) with one textured square in the
    middle: every corner is on the square, and the grain is too faint for DIFF_LEVEL."""
    spec = sm.ClipSpec(split="train", kind="pan", label="still_image", seed=seed, hw=(H, W),
                       background="flat", crf=24, speed=speed)
    rng = np.random.default_rng(seed)
    h, w = 2 * H, 2 * W  # room for the camera to travel
    grain = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 2.0)
    scene = np.repeat((110 + grain * grain_sigma / grain.std())[..., None], 3, axis=2)
    side = int(np.sqrt(0.12 * H * W))
    brick = synthetic.cover_crop(synthetic.texture("brick", (200, 160, 120)), (side, side))
    scene[(h - side) // 2:(h + side) // 2, (w - side) // 2:(w + side) // 2] = brick
    return sm._render_camera(spec, np.clip(scene, 0, 255).astype(np.float32), rng)


def _score(frames: np.ndarray, tmp_path, name: str) -> dict:
    path = synthetic.write_video(frames, tmp_path / f"{name}.mp4", fps=sm.FPS, crf=24,
                                 x264_params=sm.DETERMINISTIC_X264)
    stage = MotionStage()
    stage.setup()
    scores = stage.score(dict(source=str(path), start_s=0.0, end_s=len(frames) / sm.FPS))
    return dict(scores, reason=stage.decide(scores).reason)


def test_a_fast_pan_over_a_photo_with_corners_on_one_object_is_a_still_image(tmp_path, monkeypatch):
    frames = _one_object_pan(grain_sigma=6.0, speed=0.45)
    assert _score(frames, tmp_path, "pan")["reason"] == "still_image"
    # without the second test the square's corners never count as the background, and the
    # photo's motion reads as a mover's (the rule before it)
    monkeypatch.setattr(motion, "moves_the_rest", lambda *args, **kwargs: False)
    assert _score(frames, tmp_path, "pan_before")["reason"] is None


@pytest.mark.parametrize("noise_sigma", [0.0, motion.SENSOR_NOISE])
def test_a_flat_mover_over_a_flat_wall_still_passes(tmp_path, noise_sigma):
    """Over a flat wall the mover's motion and a static camera predict the same wall: no
    verdict, so the mover stays a mover, also with the largest sensor noise in the range."""
    assert motion.SENSOR_NOISE == sm.NOISE_SIGMA[1]  # the gap is derived from the range's top
    spec = sm.ClipSpec(split="train", kind="mover", label="desirable", seed=6, hw=(H, W),
                       background="flat", crf=24, area=0.2, speed=0.3, path="straight",
                       noise_sigma=noise_sigma)
    frames = sm.render(spec)
    assert _score(frames, tmp_path, "mover")["reason"] is None
    f0, f1 = (cv2.GaussianBlur(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), (0, 0), motion.DIFF_BLUR)
              for f in (frames[10], frames[12]))
    p0, p1 = motion.track_corners(f0, f1, max_corners=400, min_distance=4, win_size=15, fb_max_px=0.5)
    Hm, inliers = cv2.findHomography(p0, p1, cv2.RANSAC, 1.0)
    inliers = inliers.ravel().astype(bool)
    assert np.abs(Hm[:2, 2]).max() > 2 and not motion.is_background(p0[inliers], H, W)
    assert not motion.moves_the_rest(f0, f1, Hm, p0[inliers], p1[inliers])


def test_a_static_textured_background_wins_over_the_movers_motion():
    rng = np.random.default_rng(1)
    wall = cv2.GaussianBlur((rng.random((H, W)) * 255).astype(np.uint8), (0, 0), 1.5)
    f0, f1 = wall.copy(), wall.copy()
    f0[40:70, 50:80] = 255 - wall[40:70, 50:80]
    f1[44:74, 56:86] = 255 - wall[40:70, 50:80]  # the mover: (+6, +4) px; the wall stays
    corners = np.array([[50, 40], [79, 40], [50, 69], [79, 69], [65, 55]], np.float32)
    shift = np.array([[1.0, 0.0, 6.0], [0.0, 1.0, 4.0], [0.0, 0.0, 1.0]])
    assert not motion.moves_the_rest(f0, f1, shift, corners, corners + (6, 4))


# ---------------------------------------------------------------- boundaries


def _stripes(level: float) -> np.ndarray:
    """Vertical stripes SHIFT_PX wide, 0 and `level`: shifted by SHIFT_PX, every pixel
    changes by exactly `level`."""
    columns = (np.arange(W) // SHIFT_PX) % 2 * level
    return np.tile(columns.astype(np.float32), (H, 1))


SHIFT = np.array([[1.0, 0.0, SHIFT_PX], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
CORNERS = np.array([[70, 50], [80, 50], [70, 61], [80, 61]], np.float32)  # one small object


def _moved_rows(b0: np.ndarray, moved: np.ndarray) -> np.ndarray:
    """b1: the rows in `moved` shifted by the camera, the others as in b0."""
    shifted = cv2.warpPerspective(b0, SHIFT, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return np.where(moved[:, None], shifted, b0)


@pytest.mark.parametrize("side", [-1, 0, 1])
def test_the_prediction_gap_at_its_boundary(monkeypatch, side):
    """Where the two predictions differ by no more than PREDICTION_GAP nothing is decided."""
    monkeypatch.setattr(motion, "PREDICTION_GAP", 8.0)  # a level float32 holds exactly
    b0 = _stripes(8.0 + side * 2 ** -10)
    b1 = _moved_rows(b0, np.ones(H, bool))  # the whole frame moves with the object
    assert motion.moves_the_rest(b0, b1, SHIFT, CORNERS, CORNERS + (SHIFT_PX, 0)) == (side > 0)


BAND = 4  # rows: bands that move or stay alternate (thicker than the 3x3 opening)


@pytest.mark.parametrize("side", [-1, 0, 1])
def test_the_majority_at_its_boundary(side):
    """The object's motion must explain more than half the telling pixels outside its hull:
    alternate bands of rows move (half: no verdict); one row more moves (the camera) or one
    fewer (no verdict). The valid rows and the hull's rows hold as many of each band."""
    b0 = _stripes(40.0)
    moved = np.arange(H) // BAND % 2 == 0
    band = 20 * BAND  # a moving band below the object's hull
    if side > 0:
        moved[band + BAND] = True  # the first row of the next (static) band moves too
    if side < 0:
        moved[band + BAND - 1] = False  # the last row of this band stays
    b1 = _moved_rows(b0, moved)
    assert motion.moves_the_rest(b0, b1, SHIFT, CORNERS, CORNERS + (SHIFT_PX, 0)) == (side > 0)

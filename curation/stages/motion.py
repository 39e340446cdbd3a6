"""Motion filter (paper A.1): reject animations of a still image and slight-motion clips.

The paper trains a VideoMAE classifier on 40K hand-labelled clips for its four undesirable
categories; until that classifier exists here, this stage covers the two motion categories
by asking whether anything moves independently of the camera:

  still image    "an animation of a static image": a pan, zoom or rotation over one photo, or
                 a photo held still. One camera motion (a homography) explains every frame.
  slight motion  "tiny camera movement and static foreground object": the camera shakes.

Per clip, frame pairs at two spacings (a short one keeps a fast mover inside the flow's
search range, a long one lets a slow mover travel far enough to see), longer side at `size` px.
Per pair:
  camera     a RANSAC homography on tracked corners, accepted only when its inliers can be
             the background (spread over the frame, or reaching two opposite edges), or
             when the pixels outside their hulls move with them (a photo whose corners
             cluster on one object); otherwise the next model is fitted to the remaining
             tracks. With none, dense
             candidates (a homography on dense flow at edges, phase correlation) are tried on
             the pixels they explain, for a photo with edges but few corners; with none of
             those either the camera is static: over a flat wall every corner is on the mover.
  residual   dense flow after warping by the camera, where the image has 2-D texture: the
             VBench-style mean of the largest 5% of magnitudes (`curation/flow_stats.py`, shared
             with the benchmark's dynamic-degree metric), less half a pixel of estimator noise.
  changed    the fraction of pixels whose blurred colour still differs after the warp: a
             flat-coloured mover over a flat background has no flow to measure, but it changes
             pixels.
Per clip, the lower quartile over pairs (the camera's speed: the median), at the spacing
that sees the most; and the camera's steadiness (its speed at the long spacing over its speed
at the short one): ~1 for a camera that travels, well below 1 for one that shakes (shake
does not add up over time).
Speeds are in frame sizes (longer side) per second, so scores do not depend on resolution or
sampling rate. Scores are stored first; `decide()` applies the thresholds, so they can be
re-tuned from `clip_scores` (`alchemist retune`). The thresholds are chosen on the train split
of a labelled set and checked on its held-out split (`alchemist eval-filter`); the generated
`motion_thresholds.py` holds them with the train scores behind them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import cv2
import numpy as np
import pyarrow as pa

from curation.flow_stats import flow_magnitude, top_fraction_mean
from curation.imaging import MIN_TRACKS, track_corners
from curation.stage import Outcome, Resources, Stage
from curation.stages.motion_thresholds import THRESHOLDS
from curation.video_io import frames_at

REASONS = {
    "still_image": "nothing moves independently of the camera: one camera motion (pan, zoom, "
                   "rotation over a still image) explains the frames, or nothing moves at all",
    "slight_motion": "nothing moves independently of the camera and the camera only shakes",
    "too_short_for_motion": "fewer than two decodable frames in the clip window",
}

SCORES = ("motion_residual", "motion_residual_mean", "motion_raw", "motion_moving_frac",
          "motion_changed_frac", "motion_camera_steadiness")


# ---------------------------------------------------------------- frame sampling


def sample_frames(path: str, times: list[float], max_side: int) -> tuple[list[np.ndarray], list[float]]:
    """RGB frames nearest to `times`, longer side scaled to `max_side` by the decoder;
    returns (frames, their timestamps)."""
    got = frames_at(path, times, max_side=max_side)
    return [rgb for rgb, _ in got], [t for _, t in got]


def pair_times(start_s: float, end_s: float, pair_dt: float, max_pairs: int) -> list[tuple[float, float]]:
    """Evenly spaced (t, t + pair_dt) pairs inside [start_s, end_s)."""
    usable = end_s - start_s - pair_dt
    if usable < 0:
        return []
    n = max(1, min(max_pairs, int(usable / pair_dt) + 1))
    step = usable / n
    return [(start_s + step * (k + 0.5), start_s + step * (k + 0.5) + pair_dt) for k in range(n)]


# ---------------------------------------------------------------- flow statistics


@dataclass(frozen=True)
class PairFlow:
    """Statistics of one frame pair; speeds in frame sizes (longer side) per second."""

    residual: float  # mean of the largest TOP_FRACTION of |flow| after camera compensation
    residual_mean: float  # mean |flow| after camera compensation
    raw: float  # mean speed of everything: camera motion plus the residual
    camera: float  # mean speed of the camera motion alone
    moving_frac: float  # fraction of valid pixels whose residual speed exceeds MOVING_SPEED
    changed_frac: float  # fraction of valid pixels that still differ after compensation


MOVING_SPEED = 0.03  # frame sizes / s: ~1 px per 0.2 s pair at 160 px (our choice)
# Dense flow under half a pixel is estimator noise (H.264, interpolation, shake): measured on
# pans and shakes it dominates the residual at the short spacing, so it is subtracted first.
FLOW_FLOOR_PX = 0.5  # our choice
# Flow is only measured where the image has 2-D texture (the smaller eigenvalue of the
# structure tensor): in flat regions (sky, walls) dense flow is codec noise, and along
# straight edges (a rocket's gantry) the motion along the edge is unobservable (the
# aperture problem), so the top 5% of residual flow there would be noise.
CORNERNESS = 1e-4  # cv2.cornerMinEigenVal, 5 px block, on the blurred frame (our choice)
# Frame differencing after compensation catches what flow misses (a flat-coloured mover
# over a flat background has no texture to track): a pixel "changed" when a blurred colour
# channel differs by more than DIFF_LEVEL, well above sensor noise and H.264 at crf 30.
DIFF_LEVEL = 24  # levels of 255 (our choice)
DIFF_BLUR = 1.0  # px, Gaussian sigma before differencing (our choice)
# Camera motion is fitted to tracked corners, but only accepted as the CAMERA's when its
# inliers belong to the background: they spread over the frame (convex hull at least
# CAMERA_MIN_SPREAD of it) or reach two opposite frame edges (a textured band under a flat
# sky is cut by the frame, a whole object is not). Otherwise the model is one object's
# motion, so the next model is fitted to the remaining tracks; with no background model, see
# DENSE_MIN_SPREAD. The spread must be above the hull of any one mover, or a large mover's
# outline passes for the background and its motion is taken for the camera's: the labelled
# set's movers cover up to 40% of the frame (a disk, whose hull is the disk itself, and which
# cannot reach two opposite edges of a 4:3 frame), so the spread is a quarter above that.
LARGEST_MOVER = 0.40  # of the frame: the largest mover the filter must keep (issue 10's range)
SPREAD_MARGIN = 1.25  # our choice
CAMERA_MIN_SPREAD = LARGEST_MOVER * SPREAD_MARGIN
BORDER_PX = 4  # px: a rim where flow and warps are unreliable, left out of measurements (our choice)
EDGE_REACH = 0.05  # of the frame side: a track this close to an edge reaches it (our choice)
CAMERA_MODELS = 3  # models tried before falling back to a static camera
# A background with edges but too few corners (a silhouette, a sparse photo) fails the test
# above, yet a camera moving over it still moves those edges all over the frame, while a
# mover over a flat wall moves only its own. So before taking the camera to be static, dense
# candidates are tried (the rejected corner models, a homography on dense flow at edge
# pixels, and phase correlation for a shift too large for the flow): one is the camera's when
# the pixels it explains, and a static camera does not, spread like a background.
DENSE_MIN_SPREAD = CAMERA_MIN_SPREAD  # hull: above the largest mover's, as for corners
# A photo whose corners cluster on one object (a rocket against the sky, a bright crater)
# fails the spread test too, and its faint texture elsewhere fails DIFF_LEVEL, so a corner
# model rejected for its spread gets a second test on the pixels OUTSIDE its inliers' hulls:
# where the model and a static camera predict different grey levels (by more than sensor
# noise can), does the model explain the next frame better? In a pan the rest of the photo
# moves with the object; over a textured static background the static camera wins; over a
# flat wall the two predict the same pixels and nothing is decided, so a mover stays a mover.
# The gap is 3 sigma of the difference of two frames (or of a frame and its shift) after the
# DIFF_BLUR blur, at the labelled set's largest sensor noise (issue 10: sigma 2-6 levels);
# the blur divides white noise's sigma by 2 * sqrt(pi) * DIFF_BLUR.
SENSOR_NOISE = 6.0  # grey levels, the largest sigma the filter must tolerate (issue 10's range)
PREDICTION_GAP = 3 * np.sqrt(2) * SENSOR_NOISE / (2 * np.sqrt(np.pi) * DIFF_BLUR)  # ~7.2 levels
EDGE_LEVEL = 20.0  # Sobel magnitude on the blurred frame: an edge the flow can follow (our choice)
EDGE_STEP = 3  # px between the edge pixels sampled for the dense homography (our choice)


def is_background(points: np.ndarray, h: int, w: int,
                  min_spread: float = CAMERA_MIN_SPREAD) -> bool:
    """Whether tracked points can be the background: spread over the frame or reaching two
    opposite edges (see CAMERA_MIN_SPREAD)."""
    if len(points) < 3:
        return False
    hull = float(cv2.contourArea(cv2.convexHull(points.astype(np.float32))))
    x, y = points[:, 0], points[:, 1]
    spans_x = x.min() < EDGE_REACH * w and x.max() > (1 - EDGE_REACH) * w
    spans_y = y.min() < EDGE_REACH * h and y.max() > (1 - EDGE_REACH) * h
    return hull >= min_spread * h * w or spans_x or spans_y


def camera_homography(f0: np.ndarray, f1: np.ndarray, ransac_px: float = 1.0,
                      min_spread: float = CAMERA_MIN_SPREAD) -> np.ndarray:
    """The camera's 3x3 motion f0 -> f1, fitted to background tracks only (see
    CAMERA_MIN_SPREAD), else a dense candidate that moves the background (DENSE_MIN_SPREAD);
    identity when neither can be the background's."""
    p0, p1 = track_corners(f0, f1, max_corners=400, min_distance=4, win_size=15, fb_max_px=0.5)
    h, w = f0.shape
    b0, b1 = (cv2.GaussianBlur(f, (0, 0), DIFF_BLUR) for f in (f0, f1))
    rejected: list[np.ndarray] = []  # corner models whose inliers looked like one object
    for _ in range(CAMERA_MODELS):
        if len(p0) < MIN_TRACKS:
            break
        H, inliers = cv2.findHomography(p0, p1, cv2.RANSAC, ransac_px)
        if H is None or not np.isfinite(H).all():
            break
        inliers = inliers.ravel().astype(bool)
        if is_background(p0[inliers], h, w, min_spread):
            return H
        if moves_the_rest(b0, b1, H, p0[inliers], p1[inliers], min_spread):
            return H  # one object's corners, but the photo around it moves with them
        rejected.append(H)
        p0, p1 = p0[~inliers], p1[~inliers]  # that was one object: look for the background
    for H in (*rejected, _edge_flow_homography(b0, b1, ransac_px), _shift_homography(b0, b1)):
        if H is not None and moves_the_background(b0, b1, H):
            return H
    return np.eye(3)  # no corners, no edges the camera moved: a flat wall, a static camera


def moves_the_rest(b0: np.ndarray, b1: np.ndarray, H: np.ndarray, q0: np.ndarray,
                   q1: np.ndarray, min_spread: float = CAMERA_MIN_SPREAD) -> bool:
    """Whether H, fitted to corners q0 -> q1 of one object (blurred grey frames b0 -> b1),
    also explains the pixels outside their hulls better than a static camera: where the two
    predictions of b1 differ by more than PREDICTION_GAP, H is closer on most pixels, and
    those pixels (less isolated ones, which noise makes) with the corners spread like a
    background (see PREDICTION_GAP)."""
    h, w = b0.shape
    warped = cv2.warpPerspective(b0, H, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    b0, b1, warped = (image.astype(np.float32) for image in (b0, b1, warped))
    rest = _valid_region(b0, H, BORDER_PX) & ~_hulls((q0, q1), h, w, BORDER_PX)
    telling = rest & (np.abs(warped - b0) > PREDICTION_GAP)  # the two predictions differ
    closer = telling & (np.abs(b1 - warped) < np.abs(b1 - b0))
    if 2 * closer.sum() <= telling.sum():  # a static camera explains as much: no verdict
        return False
    closer = cv2.morphologyEx(closer.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    ys, xs = np.nonzero(closer)
    return is_background(np.concatenate([np.stack([xs, ys], axis=1), q1]), h, w, min_spread)


def _hulls(point_sets: tuple[np.ndarray, ...], h: int, w: int, margin_px: int) -> np.ndarray:
    """The convex hulls of point sets, grown by `margin_px`, as one (h, w) bool mask."""
    mask = np.zeros((h, w), np.uint8)
    for points in point_sets:
        cv2.fillConvexPoly(mask, cv2.convexHull(np.round(points).astype(np.int32)), 1)
    kernel = np.ones((2 * margin_px + 1, 2 * margin_px + 1), np.uint8)
    return cv2.dilate(mask, kernel).astype(bool)


def _edge_flow_homography(b0: np.ndarray, b1: np.ndarray, ransac_px: float) -> np.ndarray | None:
    """A homography fitted to dense flow at edge pixels of the blurred frame b0."""
    strength = np.hypot(cv2.Sobel(b0, cv2.CV_32F, 1, 0), cv2.Sobel(b0, cv2.CV_32F, 0, 1))
    ys, xs = np.mgrid[0:b0.shape[0]:EDGE_STEP, 0:b0.shape[1]:EDGE_STEP]
    on_edge = strength[ys, xs] > EDGE_LEVEL
    if on_edge.sum() < MIN_TRACKS:
        return None
    flow = _farneback_flow(b0, b1)
    ys, xs = ys[on_edge], xs[on_edge]
    p0 = np.stack([xs, ys], axis=1).astype(np.float32)
    H, _ = cv2.findHomography(p0, p0 + flow[ys, xs], cv2.RANSAC, ransac_px)
    return H if H is not None and np.isfinite(H).all() else None


def _shift_homography(b0: np.ndarray, b1: np.ndarray) -> np.ndarray:
    """The shift b0 -> b1 by phase correlation (any size, where flow has a limited range)."""
    window = cv2.createHanningWindow(b0.shape[::-1], cv2.CV_32F)
    (dx, dy), _ = cv2.phaseCorrelate(b0.astype(np.float32), b1.astype(np.float32), window)
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])


def moves_the_background(b0: np.ndarray, b1: np.ndarray, H: np.ndarray) -> bool:
    """Whether the pixels H explains and a static camera does not (blurred grey frames) are
    spread like a background (see DENSE_MIN_SPREAD)."""
    h, w = b0.shape
    warped = cv2.warpPerspective(b0, H, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    moved = ((cv2.absdiff(b0, b1) > DIFF_LEVEL) & (cv2.absdiff(warped, b1) <= DIFF_LEVEL)
             & _valid_region(b0, H, border_px=1))
    ys, xs = np.nonzero(moved)
    return is_background(np.stack([xs, ys], axis=1), h, w, DENSE_MIN_SPREAD)


def _farneback_flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return cv2.calcOpticalFlowFarneback(a, b, None, pyr_scale=0.5, levels=3, winsize=13,
                                        iterations=3, poly_n=5, poly_sigma=1.1, flags=0)  # (H, W, 2) px


def _farneback(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return flow_magnitude(_farneback_flow(a, b))  # (H, W) pixels


def _camera_speed(H: np.ndarray, h: int, w: int, step: int = 8) -> np.ndarray:
    """|H(x) - x| in pixels on a grid of frame points."""
    ys, xs = np.mgrid[0:h:step, 0:w:step].astype(np.float32)
    pts = np.stack([xs.ravel(), ys.ravel()], axis=1)[:, None, :]
    moved = cv2.perspectiveTransform(pts, H)
    return np.linalg.norm((moved - pts).reshape(-1, 2), axis=1)


def textured(image: np.ndarray, dilate_px: int = 2) -> np.ndarray:
    """Pixels near enough to 2-D texture for flow to be measured there."""
    blurred = cv2.GaussianBlur(image, (0, 0), DIFF_BLUR)
    mask = (cv2.cornerMinEigenVal(blurred, blockSize=5, ksize=3) > CORNERNESS).astype(np.uint8)
    kernel = np.ones((2 * dilate_px + 1, 2 * dilate_px + 1), np.uint8)
    return cv2.dilate(mask, kernel).astype(bool)


def _valid_region(f0: np.ndarray, H: np.ndarray, border_px: int) -> np.ndarray:
    """Pixels of f1 that the warped f0 covers, less a rim where flow is unreliable."""
    h, w = f0.shape
    valid = cv2.warpPerspective(np.ones_like(f0), H, (w, h), flags=cv2.INTER_NEAREST)
    kernel = np.ones((2 * border_px + 1, 2 * border_px + 1), np.uint8)
    return cv2.erode(valid, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)


def pair_flow(rgb0: np.ndarray, rgb1: np.ndarray, dt: float, border_px: int = BORDER_PX) -> PairFlow:
    """Flow statistics of one frame pair `dt` seconds apart (uint8 RGB or grey, same size).
    Flow runs on grey levels; differencing on colour, so a mover that differs from its
    background in hue but not in brightness still shows."""
    f0, f1 = (cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) if f.ndim == 3 else f for f in (rgb0, rgb1))
    h, w = f0.shape
    scale = 1.0 / (max(h, w) * dt)  # pixels per pair -> frame sizes per second
    H = camera_homography(f0, f1)
    valid = _valid_region(f0, H, border_px)
    if valid.sum() < 0.05 * h * w:  # the camera moved almost the whole frame away
        valid = np.zeros_like(valid)
        valid[border_px:h - border_px, border_px:w - border_px] = True
        H = np.eye(3)
    warp = lambda image: cv2.warpPerspective(image, H, (w, h), flags=cv2.INTER_LINEAR,  # noqa: E731
                                             borderMode=cv2.BORDER_REPLICATE)
    measurable = valid & textured(f1)
    residual = np.maximum(_farneback(warp(f0), f1)[measurable] - FLOW_FLOOR_PX, 0.0) * scale
    if residual.size == 0:  # a flat frame: nothing that could show motion
        residual = np.zeros(1)
    blur = lambda image: cv2.GaussianBlur(image, (0, 0), DIFF_BLUR)  # noqa: E731
    diff = cv2.absdiff(blur(warp(rgb0)), blur(rgb1))
    diff = (diff.max(axis=2) if diff.ndim == 3 else diff)[valid]  # the most-changed channel
    camera = float(_camera_speed(H, h, w).mean() * scale)
    return PairFlow(residual=top_fraction_mean(residual),
                    residual_mean=float(residual.mean()),
                    raw=camera + float(residual.mean()),
                    camera=camera,
                    moving_frac=float((residual > MOVING_SPEED).mean()),
                    changed_frac=float((diff > DIFF_LEVEL).mean()))


def clip_flow(path: str, start_s: float, end_s: float, *, size: int,
              spacings: tuple[float, ...], max_pairs: int) -> dict[float, list[PairFlow]]:
    """Pair statistics at each frame spacing (seconds) -> the pairs measured."""
    pairs = {dt: pair_times(start_s, end_s, dt, max_pairs) for dt in spacings}
    times = sorted({t for ps in pairs.values() for pair in ps for t in pair})
    if not times:
        return {}
    frames, stamps = sample_frames(path, times, size)
    at = dict(zip(times, zip(frames, stamps)))
    out: dict[float, list[PairFlow]] = {}
    for dt, ps in pairs.items():
        for a, b in ps:
            (f0, t0), (f1, t1) = at[a], at[b]
            if t1 > t0 and f0.shape == f1.shape:
                out.setdefault(dt, []).append(pair_flow(f0, f1, t1 - t0))
    return out


# ---------------------------------------------------------------- the stage


@dataclass
class MotionStage(Stage):
    """Flow scores per clip and the still-image / slight-motion decision (paper A.1)."""

    name: ClassVar[str] = "motion"
    reads: ClassVar[tuple[str, ...]] = ("source", "start_s", "end_s")
    writes: ClassVar[tuple[pa.Field, ...]] = (
        pa.field("motion_residual", pa.float32()),  # top-5% residual speed, frame sizes / s
        pa.field("motion_residual_mean", pa.float32()),
        pa.field("motion_raw", pa.float32()),  # mean speed of everything, frame sizes / s
        pa.field("motion_moving_frac", pa.float32()),
        pa.field("motion_changed_frac", pa.float32()),  # pixels changed after compensation
        pa.field("motion_camera_steadiness", pa.float32()),  # camera speed long / short spacing
        pa.field("motion_pairs", pa.int32()),  # frame pairs measured
    )
    scores: ClassVar[tuple[str, ...]] = SCORES
    retunable: ClassVar[bool] = True  # decide() reads only the stored scores

    # Sampling (our choice): 160 px is enough for global-motion and object-motion statistics.
    size: int = 160  # longer side of the analysed frames, px
    # Two frame spacings: the short one keeps a fast mover inside the flow's search range,
    # the long one lets a slow mover travel far enough to be seen (seconds; our choice).
    spacings: tuple[float, ...] = (0.08, 0.32)
    max_pairs: int = 6  # pairs per spacing, evenly spread over the clip (our choice)
    # Thresholds: chosen on the train range of the labelled set (motion_thresholds.py).
    residual_min: float = THRESHOLDS["residual_min"]  # top-5% residual speed, frame sizes/s
    changed_min: float = THRESHOLDS["changed_min"]  # fraction changed after compensation
    frozen_max: float = THRESHOLDS["frozen_max"]  # mean speed below: nothing moves -> still_image
    steady_min: float = THRESHOLDS["steady_min"]  # camera steadiness below: shake -> slight_motion
    resources: Resources = field(default_factory=lambda: Resources(cpus=0.5, batch_size=8))

    def setup(self) -> None:
        # One OpenCV thread per actor: Ray runs one actor per CPU it grants, and OpenCV's own
        # pool would oversubscribe the cores those actors share.
        cv2.setNumThreads(1)

    def process_batch(self, rows: list[dict]) -> list[dict | Outcome]:
        return [self.score(row) for row in rows]

    def score(self, row: dict) -> dict | Outcome:
        flows = clip_flow(row["source"], row["start_s"], row["end_s"], size=self.size,
                          spacings=tuple(self.spacings), max_pairs=self.max_pairs)
        if not flows:
            return Outcome.reject("too_short_for_motion",
                                  f"no frame pair {min(self.spacings)}s apart in the clip",
                                  motion_pairs=0)
        return scores_of(flows)

    def decide(self, values: dict) -> Outcome:
        """Apply the thresholds to stored scores (cheap; re-run to re-tune): keep a clip in
        which something moves independently of the camera; otherwise tell a still photo,
        a shaking camera and a camera travelling over a still image apart by mean speed."""
        residual, raw = values["motion_residual"], values["motion_raw"]
        changed = values.get("motion_changed_frac") or 0.0  # absent in scores stored before it
        if residual >= self.residual_min or changed >= self.changed_min:
            return Outcome(values=values)
        why = (f"after camera compensation: residual flow {residual:.4f} < {self.residual_min} "
               f"frame sizes/s and changed pixels {changed:.4f} < {self.changed_min}")
        if raw < self.frozen_max:
            return Outcome.reject("still_image", f"{why}; raw flow {raw:.5f} < "
                                  f"{self.frozen_max}: nothing moves", **values)
        steadiness = values.get("motion_camera_steadiness")
        if steadiness is not None and steadiness < self.steady_min:
            return Outcome.reject("slight_motion", f"{why}; camera steadiness {steadiness:.3f} < "
                                  f"{self.steady_min}: the camera only shakes", **values)
        return Outcome.reject("still_image", f"{why}; one camera motion explains the raw "
                              f"flow {raw:.4f}", **values)


# Over a photo with few corners the camera estimate fails on some pairs (no background
# model, or a loose one), and those pairs show the whole photo moving; a mover moves in
# (nearly) every pair. So the evidence of independent motion is read at the lower quartile
# over a spacing's pairs, which a minority of failed pairs does not raise, and the camera's
# speed at the median (our choice).
EVIDENCE = ("residual", "residual_mean", "moving_frac", "changed_frac")
EVIDENCE_PERCENTILE = 25


def _over_pairs(pairs: list[PairFlow]) -> dict[str, float]:
    return {k: float(np.percentile([getattr(f, k) for f in pairs], EVIDENCE_PERCENTILE) if k in EVIDENCE
                     else np.median([getattr(f, k) for f in pairs]))
            for k in PairFlow.__dataclass_fields__}


def scores_of(flows: dict[float, list[PairFlow]]) -> dict:
    """Clip scores: per spacing one value over its pairs (`_over_pairs`: a camera estimate
    that fails on a few pairs does not decide the clip); then the spacing that sees the most
    independent motion (a fast mover at the short one, a slow mover at the long one)."""
    means = [_over_pairs(flows[dt]) for dt in sorted(flows)]
    best = max(means, key=lambda m: m["residual"])
    return dict(
        motion_residual=best["residual"],
        motion_residual_mean=best["residual_mean"],
        motion_raw=means[-1]["raw"],  # at the longest spacing: shake does not add up
        # A travelling camera keeps its speed at every spacing; a shaking one does not get
        # further in a longer interval, so its speed drops with the spacing.
        motion_camera_steadiness=(means[-1]["camera"] / means[0]["camera"] if means[0]["camera"] > 0
                                  else 0.0),
        motion_moving_frac=best["moving_frac"],
        motion_changed_frac=max(m["changed_frac"] for m in means),
        motion_pairs=sum(len(fs) for fs in flows.values()),
    )

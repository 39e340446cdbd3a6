"""Image helpers every stage shares: PNG codecs, boxes, masks and camera homographies.

Conventions (one each, used everywhere):
  arrays   uint8 RGB `(H, W, 3)`, RGBA `(H, W, 4)`, grey `(H, W)`; boolean masks `(H, W)`.
  boxes    `(x0, y0, x1, y1)` floats in frame pixels, end exclusive; functions that need the
           frame size take `(box, width, height)` in that order.
  pixels   a float box becomes the integer window that COVERS it: floor the start, ceil the
           end, clipped to the frame (`pixel_box`). A crop therefore never cuts off part of
           the box, and an integer box maps to itself.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

Box = tuple[float, float, float, float]


# --- PNG -------------------------------------------------------------------------------------


def encode_png(image: np.ndarray, compression: int | None = None) -> bytes:
    """uint8 RGB, RGBA, grey or a bool mask (stored 0/255) -> PNG bytes.

    `compression` is the zlib level 0-9; None keeps OpenCV's default settings, so bytes
    written before this module existed are reproduced exactly.
    """
    image = np.asarray(image)
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    channels = image.shape[2] if image.ndim == 3 else 1
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or channels not in (1, 3, 4):
        raise ValueError(f"encode_png takes uint8 (H, W), (H, W, 3) or (H, W, 4), "
                         f"got {image.dtype} {image.shape}")
    if channels == 3:
        image = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR)
    elif channels == 4:
        image = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGBA2BGRA)
    params = [] if compression is None else [cv2.IMWRITE_PNG_COMPRESSION, compression]
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(image), params)
    if not ok:
        raise ValueError(f"cannot PNG-encode an array of shape {image.shape}")
    return buf.tobytes()


def decode_png(data: bytes, mode: str = "RGB") -> np.ndarray:
    """PNG bytes -> uint8 array: "RGB" (H, W, 3; alpha dropped, grey expanded),
    "RGBA" (H, W, 4) or "L" (H, W)."""
    flags = {"RGB": cv2.IMREAD_COLOR, "RGBA": cv2.IMREAD_UNCHANGED, "L": cv2.IMREAD_GRAYSCALE}
    if mode not in flags:
        raise ValueError(f"mode must be one of {sorted(flags)}, not {mode!r}")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flags[mode])
    if image is None:
        raise ValueError("not a decodable image")
    if mode == "L":
        return image
    if mode == "RGB":
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA if image.shape[2] == 4 else cv2.COLOR_BGR2RGBA)


# --- boxes -----------------------------------------------------------------------------------


def clip_box(box: Sequence[float], width: int, height: int) -> Box:
    """`box` with every coordinate clamped into the `width` x `height` frame."""
    x0, y0, x1, y1 = (float(v) for v in box)
    return (min(max(x0, 0.0), width), min(max(y0, 0.0), height),
            min(max(x1, 0.0), width), min(max(y1, 0.0), height))


def pixel_box(box: Sequence[float], width: int, height: int) -> tuple[int, int, int, int]:
    """The integer pixel window that covers `box`, inside the frame (may be empty)."""
    x0, y0, x1, y1 = clip_box(box, width, height)
    return (int(math.floor(x0)), int(math.floor(y0)), int(math.ceil(x1)), int(math.ceil(y1)))


def box_area(box: Sequence[float]) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = box_area(a) + box_area(b) - inter
    return inter / union if union > 0 else 0.0


# --- masks -----------------------------------------------------------------------------------


def mask_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Tight `(x0, y0, x1, y1)` (exclusive end) of a boolean mask, or None when empty."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected component of a boolean mask (empty stays empty)."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return mask.astype(bool)
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return labels == best


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Background regions of a boolean mask that do not touch the frame border become
    foreground (the gap between an arm and a body)."""
    flood = np.pad(mask.astype(np.uint8), 1)  # a 1-px rim of background joins every border region
    h, w = flood.shape
    cv2.floodFill(flood, np.zeros((h + 2, w + 2), np.uint8), (0, 0), 1)
    holes = flood[1:-1, 1:-1] == 0
    return mask.astype(bool) | holes


def paste_mask(mask_in_box: np.ndarray, box: Sequence[float], width: int, height: int) -> np.ndarray:
    """A box-sized mask placed at its box on an empty `height` x `width` frame -> bool (H, W).

    Placement, not box conversion: the mask's own pixels are authoritative and go to the
    box's nearest pixel corner (stored reference boxes are integer windows, so this is
    exact for them). A mask whose size matches the rounded box within one pixel is pasted as
    is; any other size is resized to it with nearest-neighbour, so masks saved at another
    scale still land on the right pixels.
    """
    full = np.zeros((height, width), bool)
    bx0, by0, bx1, by1 = (int(round(float(v))) for v in box)
    bw, bh = bx1 - bx0, by1 - by0
    if bw <= 0 or bh <= 0 or mask_in_box.size == 0:
        return full
    m = mask_in_box > 0
    if abs(m.shape[1] - bw) > 1 or abs(m.shape[0] - bh) > 1:
        m = cv2.resize(m.astype(np.uint8), (bw, bh), interpolation=cv2.INTER_NEAREST) > 0
    # clip the pasted window to the frame (boxes may touch or cross the border)
    x0, y0 = max(bx0, 0), max(by0, 0)
    x1, y1 = min(bx0 + m.shape[1], width), min(by0 + m.shape[0], height)
    if x1 > x0 and y1 > y0:
        full[y0:y1, x0:x1] = m[y0 - by0:y1 - by0, x0 - bx0:x1 - bx0]
    return full


# --- camera motion ---------------------------------------------------------------------------


MIN_TRACKS = 8  # a homography has 8 degrees of freedom: fewer tracks cannot fix one


def track_corners(src_gray: np.ndarray, dst_gray: np.ndarray, *, max_corners: int,
                  min_distance: int, win_size: int, fb_max_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Corners of src and where Lucas-Kanade finds them in dst, `(N, 2)` float32 each; a
    forward-backward check (`fb_max_px`) drops tracks lost at occlusions and frame borders."""
    p0 = cv2.goodFeaturesToTrack(src_gray, maxCorners=max_corners, qualityLevel=0.01,
                                 minDistance=min_distance)
    if p0 is None:
        return np.empty((0, 2), np.float32), np.empty((0, 2), np.float32)
    lk = dict(winSize=(win_size, win_size), maxLevel=3)
    p1, st, _ = cv2.calcOpticalFlowPyrLK(src_gray, dst_gray, p0, None, **lk)
    back, st_b, _ = cv2.calcOpticalFlowPyrLK(dst_gray, src_gray, p1, None, **lk)
    fb = np.linalg.norm((back - p0).reshape(-1, 2), axis=1)
    good = (st.ravel() == 1) & (st_b.ravel() == 1) & (fb < fb_max_px)
    return p0.reshape(-1, 2)[good], p1.reshape(-1, 2)[good]


def estimate_homography(src_gray: np.ndarray, dst_gray: np.ndarray, *, max_corners: int,
                        min_distance: int, win_size: int, fb_max_px: float, ransac_px: float,
                        min_inlier_frac: float = 0.0) -> np.ndarray | None:
    """One global 3x3 camera motion src -> dst, or None when it cannot be estimated.

    RANSAC on `track_corners`. `min_inlier_frac` > 0 also refuses a homography that explains
    fewer than that fraction of the surviving tracks. Callers choose the constants: they
    trade robustness (periodic textures, small frames) against speed.
    """
    p0, p1 = track_corners(src_gray, dst_gray, max_corners=max_corners,
                           min_distance=min_distance, win_size=win_size, fb_max_px=fb_max_px)
    if len(p0) < MIN_TRACKS:
        return None
    H, inliers = cv2.findHomography(p0, p1, cv2.RANSAC, ransac_px)
    if H is None or not np.isfinite(H).all():
        return None
    if min_inlier_frac > 0 and inliers.sum() < max(MIN_TRACKS, min_inlier_frac * len(p0)):
        return None
    return H

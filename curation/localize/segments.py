"""Boxes, masks and the reference-image encoding shared by every detector and segmenter.

Conventions (warehouse_schemas.references): boxes are `(x0, y0, x1, y1)` in frame pixels;
a reference is the box crop of the frame with the mask as its alpha channel (RGBA PNG) plus
the box-sized binary mask, as in the MSRVTT-Personalization release.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

Box = tuple[float, float, float, float]


# --- PNG ---------------------------------------------------------------------------------------


def decode_png(data: bytes) -> np.ndarray:
    """PNG bytes -> RGB uint8 `(H, W, 3)` (alpha dropped, grey expanded)."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("not a decodable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def encode_png(image: np.ndarray) -> bytes:
    """RGB `(H, W, 3)`, RGBA `(H, W, 4)` or grey `(H, W)` uint8 -> PNG bytes."""
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA)
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(image))
    if not ok:
        raise ValueError(f"cannot PNG-encode an array of shape {image.shape}")
    return buf.tobytes()


# --- boxes -------------------------------------------------------------------------------------


def clip_box(box, width: int, height: int) -> Box:
    x0, y0, x1, y1 = (float(v) for v in box)
    return (min(max(x0, 0.0), width), min(max(y0, 0.0), height),
            min(max(x1, 0.0), width), min(max(y1, 0.0), height))


def pixel_box(box, width: int, height: int) -> tuple[int, int, int, int]:
    """The integer pixel window that covers `box`, inside the frame (may be empty)."""
    x0, y0, x1, y1 = clip_box(box, width, height)
    return (int(math.floor(x0)), int(math.floor(y0)), int(math.ceil(x1)), int(math.ceil(y1)))


def box_area(box) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def box_iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = box_area(a) + box_area(b) - inter
    return inter / union if union > 0 else 0.0


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
    """Fill the background regions of a boolean mask that do not touch the image border."""
    m = mask.astype(np.uint8)
    h, w = m.shape
    flood = np.pad(m, 1)  # a 1-px frame of background connects every border region
    ff_mask = np.zeros((h + 4, w + 4), np.uint8)
    cv2.floodFill(flood, ff_mask, (0, 0), 1)
    holes = flood[1:-1, 1:-1] == 0
    return mask.astype(bool) | holes


# --- references --------------------------------------------------------------------------------


def reference_images(image: np.ndarray, box, mask: np.ndarray
                     ) -> tuple[tuple[int, int, int, int], bytes, bytes]:
    """The reference encoding of one segment: `(crop box, RGBA PNG, mask PNG)`.

    `mask` is frame-sized boolean; the crop is the integer window covering `box`, with the
    mask (restricted to that window) as alpha 0/255. The mask PNG is the same window, 0/255.
    """
    h, w = image.shape[:2]
    x0, y0, x1, y1 = pixel_box(box, w, h)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"box {tuple(box)} has no pixels inside the {w}x{h} frame")
    alpha = mask[y0:y1, x0:x1].astype(np.uint8) * 255
    rgba = np.dstack([image[y0:y1, x0:x1, :3], alpha])
    return (x0, y0, x1, y1), encode_png(rgba), encode_png(alpha)

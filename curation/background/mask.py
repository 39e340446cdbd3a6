"""Masks and PNG codecs for the reference, face and background stages.

References store a box-sized binary mask plus the box (paper 3.1, authors' release); the
background needs the union of those masks on the full middle frame, dilated because SAM
"occasionally produces imprecise boundaries" (paper 3.1) and with holes filled, so that a
subject's interior (a gap between arm and body) is inpainted too.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import cv2
import numpy as np

# ---------------------------------------------------------------- PNG codecs


def decode_png(data: bytes, mode: str = "RGB") -> np.ndarray:
    """PNG bytes -> uint8 array: "RGB" (H, W, 3), "RGBA" (H, W, 4) or "L" (H, W)."""
    flag = cv2.IMREAD_GRAYSCALE if mode == "L" else cv2.IMREAD_UNCHANGED
    img = cv2.imdecode(np.frombuffer(data, np.uint8), flag)
    if img is None:
        raise ValueError("not a decodable PNG")
    if mode == "L":
        return img
    if img.ndim == 2:
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if mode == "RGBA":
        return cv2.cvtColor(img, cv2.COLOR_BGRA2RGBA if img.shape[2] == 4 else cv2.COLOR_BGR2RGBA)
    return cv2.cvtColor(img, cv2.COLOR_BGRA2RGB if img.shape[2] == 4 else cv2.COLOR_BGR2RGB)


def encode_png(img: np.ndarray) -> bytes:
    """uint8 RGB (H, W, 3), RGBA (H, W, 4), gray (H, W) or bool mask (stored 0/255) -> PNG."""
    if img.dtype == bool:
        img = img.astype(np.uint8) * 255
    if img.ndim == 3:
        code = cv2.COLOR_RGBA2BGRA if img.shape[2] == 4 else cv2.COLOR_RGB2BGR
        img = cv2.cvtColor(np.ascontiguousarray(img), code)
    ok, buf = cv2.imencode(".png", img)
    if not ok:
        raise ValueError(f"cannot encode an array of shape {img.shape} as PNG")
    return buf.tobytes()


# ---------------------------------------------------------------- geometry


def box_pixels(box_xyxy: Sequence[float], height: int, width: int) -> tuple[int, int, int, int]:
    """Float box -> integer pixel window (x0, y0, x1, y1) clipped to the frame."""
    x0, y0, x1, y1 = (int(round(float(v))) for v in box_xyxy)
    x0, x1 = max(0, min(x0, width)), max(0, min(x1, width))
    y0, y1 = max(0, min(y0, height)), max(0, min(y1, height))
    return x0, y0, x1, y1


def paste_mask(mask_box: np.ndarray, box_xyxy: Sequence[float], height: int, width: int) -> np.ndarray:
    """A box-sized mask placed at its box on an empty (height, width) frame -> bool (H, W).

    A mask whose size matches the rounded box (within one pixel of rounding) is pasted as
    is; any other size is resized to the box with nearest-neighbour, so masks saved at a
    different scale still land on the right pixels.
    """
    full = np.zeros((height, width), bool)
    bx0, by0 = int(round(float(box_xyxy[0]))), int(round(float(box_xyxy[1])))
    bw = int(round(float(box_xyxy[2]))) - bx0
    bh = int(round(float(box_xyxy[3]))) - by0
    if bw <= 0 or bh <= 0 or mask_box.size == 0:
        return full
    m = mask_box > 0
    if abs(m.shape[1] - bw) > 1 or abs(m.shape[0] - bh) > 1:
        m = cv2.resize(m.astype(np.uint8), (bw, bh), interpolation=cv2.INTER_NEAREST) > 0
    # clip the pasted window to the frame (boxes may touch or cross the border)
    x0, y0 = max(bx0, 0), max(by0, 0)
    x1, y1 = min(bx0 + m.shape[1], width), min(by0 + m.shape[0], height)
    if x1 > x0 and y1 > y0:
        full[y0:y1, x0:x1] = m[y0 - by0:y1 - by0, x0 - bx0:x1 - bx0]
    return full


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Background regions not connected to the frame border become foreground."""
    h, w = mask.shape
    padded = np.zeros((h + 2, w + 2), np.uint8)
    padded[1:-1, 1:-1] = mask.astype(np.uint8)
    flood = padded.copy()
    ff_mask = np.zeros((h + 4, w + 4), np.uint8)
    cv2.floodFill(flood, ff_mask, (0, 0), 1)  # the padded border reaches all outer background
    holes = flood[1:-1, 1:-1] == 0
    return mask.astype(bool) | holes


def foreground_mask(masks: Iterable[np.ndarray], height: int, width: int, kernel: int = 4,
                    iterations: int = 3) -> np.ndarray:
    """Union of full-frame masks, dilated with a kernel x kernel box of ones, holes filled."""
    union = np.zeros((height, width), bool)
    for m in masks:
        union |= m.astype(bool)
    if iterations > 0 and kernel > 0 and union.any():
        union = cv2.dilate(union.astype(np.uint8), np.ones((kernel, kernel), np.uint8),
                           iterations=iterations) > 0
    return fill_holes(union)

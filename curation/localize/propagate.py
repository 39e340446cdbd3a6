"""Carry detector boxes from the middle frame to the 5% and 95% frames (a cost lever:
GroundingDINO on one frame instead of three).

The three frames are seconds apart, too far for optical flow, so each box's crop is found
again by normalised cross-correlation over the other frame, at a few scales (a subject can
approach or recede). The propagated score is the detector's score times the match score, so
a box that cannot be found again falls under the stage's thresholds by itself."""
from __future__ import annotations

import dataclasses
from typing import Sequence

import cv2
import numpy as np

from curation.localize.grounding_dino import Detection

SCALES = (0.8, 0.9, 1.0, 1.1, 1.25)  # box size changes tried between frames (our choice)
WORK_SIDE = 320  # frames are matched downscaled to this longest side (our choice: speed)


def _gray(image: np.ndarray, factor: float) -> np.ndarray:
    g = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return cv2.resize(g, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)


def match_box(source: np.ndarray, target: np.ndarray, box: Sequence[float]) -> tuple[tuple[float, ...], float]:
    """(box in `target`, match score in [0, 1]) of `box`'s content in `source`."""
    factor = min(1.0, WORK_SIDE / max(source.shape[:2]))
    src, dst = _gray(source, factor), _gray(target, factor)
    x0, y0, x1, y1 = (int(round(v * factor)) for v in box)
    crop = src[max(y0, 0):max(y1, y0 + 1), max(x0, 0):max(x1, x0 + 1)]
    best = (tuple(box), 0.0)
    for scale in SCALES:
        h, w = max(2, round(crop.shape[0] * scale)), max(2, round(crop.shape[1] * scale))
        if h >= dst.shape[0] or w >= dst.shape[1]:
            continue
        scores = cv2.matchTemplate(dst, cv2.resize(crop, (w, h)), cv2.TM_CCOEFF_NORMED)
        _, score, _, (mx, my) = cv2.minMaxLoc(scores)
        if score > best[1]:
            best = (tuple(v / factor for v in (mx, my, mx + w, my + h)), float(score))
    return best


def propagate(middle: list[Detection], images: Sequence[np.ndarray], middle_index: int) -> list[list[Detection]]:
    """Per frame: the middle frame's detections, and their matches in every other frame."""
    out = []
    for k, image in enumerate(images):
        if k == middle_index:
            out.append(list(middle))
            continue
        moved = []
        for d in middle:
            box, score = match_box(images[middle_index], image, d.box)
            moved.append(dataclasses.replace(d, box=box, score=d.score * max(score, 0.0),
                                             detector=f"{d.detector}+propagated"))
        out.append(moved)
    return out

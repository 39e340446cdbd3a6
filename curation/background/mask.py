"""The background stage's foreground mask (codecs and mask geometry: curation/imaging.py).

References store a box-sized binary mask plus the box (paper 3.1, authors' release); the
background needs the union of those masks on the full middle frame, dilated because SAM
"occasionally produces imprecise boundaries" (paper 3.1) and with holes filled, so that a
subject's interior (a gap between arm and body) is inpainted too.
"""
from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from curation.imaging import fill_holes


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

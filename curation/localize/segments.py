"""The reference-image encoding shared by every detector and segmenter.

Conventions (warehouse_schemas.references; boxes and masks as in curation/imaging.py):
a reference is the box crop of the frame with the mask as its alpha channel (RGBA PNG) plus
the box-sized binary mask, as in the MSRVTT-Personalization release.
"""
from __future__ import annotations

import numpy as np

from curation.imaging import encode_png, pixel_box


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

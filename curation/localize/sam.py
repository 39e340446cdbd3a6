"""SAM (paper 3.1): one mask per kept box, one image embedding per frame.

The ViT image encoder is the expensive part, so each frame is embedded once (batched over
frames) and every box of that frame goes through the light prompt encoder + mask decoder
against that shared embedding (`image_embeddings=`). Boxes are the only prompt and
`multimask_output=False`: a box is an unambiguous prompt (SAM paper, sec. 3), so SAM's
single best mask is used. SAM's predicted IoU is recorded as the mask score.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from curation.imaging import Box

DEFAULT_MODEL = "facebook/sam-vit-huge"  # paper 3.1 uses SAM; ViT-H is SAM's default model
MASK_THRESHOLD = 0.0  # SAM's own logit threshold for a binary mask


class Sam:
    """`SamModel` + `SamProcessor`, batched over frames with one embedding per frame."""

    def __init__(self, spec: str = DEFAULT_MODEL, *, device: str = "auto", images_per_forward: int = 8,
                 dtype=None):
        import torch
        from transformers import SamModel, SamProcessor

        from model import model_registry

        self.device = model_registry.device(device)
        self.dtype = dtype or model_registry.half_dtype_for(self.device)  # default: half precision on GPU only
        self.processor = model_registry.load(SamProcessor, spec)
        self.model = model_registry.load(SamModel, spec, device=self.device, dtype=self.dtype)
        self.id = f"sam:{model_registry.parse(spec).id}"
        self.images_per_forward = images_per_forward
        self._torch = torch

    def segment(self, images: Sequence[np.ndarray], boxes: Sequence[Sequence[Box]]
                ) -> list[list[tuple[np.ndarray, float]]]:
        """For each RGB image and each of its boxes: (frame-sized bool mask, predicted IoU)."""
        todo = [i for i, b in enumerate(boxes) if len(b)]
        out: list[list[tuple[np.ndarray, float]]] = [[] for _ in images]
        for k in range(0, len(todo), self.images_per_forward):
            chunk = todo[k:k + self.images_per_forward]
            for i, result in zip(chunk, self._forward([images[i] for i in chunk], [boxes[i] for i in chunk])):
                out[i] = result
        return out

    def _forward(self, images, boxes) -> list[list[tuple[np.ndarray, float]]]:
        torch = self._torch
        n_max = max(len(b) for b in boxes)
        # The decoder takes the same number of boxes per image: repeat the last box as padding
        # (each box is decoded independently, so padding never changes another box's mask).
        padded = [[list(map(float, b)) for b in bs] + [list(map(float, bs[-1]))] * (n_max - len(bs))
                  for bs in boxes]
        inputs = self.processor(images=list(images), input_boxes=padded, return_tensors="pt")
        pixels = inputs["pixel_values"].to(self.device, self.dtype)
        with torch.inference_mode():
            embeddings = self.model.get_image_embeddings(pixels)  # (N, C, h, w): once per frame
            outputs = self.model(image_embeddings=embeddings,
                                 input_boxes=inputs["input_boxes"].to(self.device, self.dtype),
                                 multimask_output=False)
        masks = self.processor.post_process_masks(
            outputs.pred_masks.float().cpu(), inputs["original_sizes"], inputs["reshaped_input_sizes"],
            mask_threshold=MASK_THRESHOLD)  # list of (n_max, 1, H, W) bool
        ious = outputs.iou_scores.float().cpu().numpy()[..., 0]  # (N, n_max)
        return [[(masks[j][b, 0].numpy().astype(bool), float(ious[j, b])) for b in range(len(bs))]
                for j, bs in enumerate(boxes)]

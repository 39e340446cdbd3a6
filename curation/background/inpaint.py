"""Inpainting backends for the clean background (paper 3.1).

Every backend maps (RGB frame, bool mask, prompt, negative prompt, seed) to an RGB frame of
the same size, and every result is blended back through the mask, so pixels outside the
mask are the original pixels, bit for bit.

  opencv  Telea / Navier-Stokes fast marching (cv2.inpaint): the CPU default; no prompt.
  sd      diffusers' StableDiffusionInpaintPipeline, as the paper (Rombach et al., 2022) and
          the authors' release (SD 2 inpainting, 512x512, guidance 12, resized back).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import cv2
import numpy as np

SD_DEFAULT_MODEL = "stabilityai/stable-diffusion-2-inpainting"  # authors' release


class Inpainter(Protocol):
    id: str

    def __call__(self, image: np.ndarray, mask: np.ndarray, prompt: str | None = None,
                 negative_prompt: str | None = None, seed: int = 0) -> np.ndarray: ...


def blend(original: np.ndarray, inpainted: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Inpainted pixels inside the mask, original pixels (unchanged) outside it."""
    return np.where(mask[..., None], inpainted, original).astype(np.uint8)


# ---------------------------------------------------------------- OpenCV


@dataclass
class OpenCVInpainter:
    method: str = "telea"  # "telea" (Telea 2004) or "ns" (Navier-Stokes); our choice: telea
    radius: int = 5  # neighbourhood considered per inpainted pixel, in pixels (our choice)

    @property
    def id(self) -> str:
        return f"opencv:{self.method}"

    def __call__(self, image, mask, prompt=None, negative_prompt=None, seed=0):
        if not mask.any():
            return image.copy()
        flag = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}[self.method]
        out = cv2.inpaint(np.ascontiguousarray(image), mask.astype(np.uint8), self.radius, flag)
        return blend(image, out, mask)


# ---------------------------------------------------------------- Stable Diffusion


def load_sd_inpaint(spec: str, device: Any = None, dtype: Any = None):
    """`StableDiffusionInpaintPipeline` from a hub id or a local `save_pretrained` directory."""
    from diffusers import StableDiffusionInpaintPipeline

    from model import model_registry

    pipe = model_registry.load(StableDiffusionInpaintPipeline, spec, device=device, dtype=dtype,
                       safety_checker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@dataclass
class SDInpainter:
    model: str = SD_DEFAULT_MODEL
    size: int = 512  # square working resolution, authors' release
    guidance_scale: float = 12.0  # authors' release
    steps: int = 50  # diffusers' default number of denoising steps (our choice)
    scheduler: str = "default"  # "default": the checkpoint's (PNDM); "dpmsolver++": ~20 steps suffice
    device: str = "auto"  # "auto": cuda when present
    _pipe: Any = field(default=None, init=False, repr=False)

    @property
    def id(self) -> str:
        return f"sd:{self.model}"

    def load(self) -> None:
        if self._pipe is None:
            from model import model_registry

            dev = model_registry.device(self.device)
            self._pipe = load_sd_inpaint(self.model, device=dev, dtype=model_registry.half_dtype_for(dev))
            if self.scheduler == "dpmsolver++":
                from diffusers import DPMSolverMultistepScheduler

                self._pipe.scheduler = DPMSolverMultistepScheduler.from_config(
                    self._pipe.scheduler.config, algorithm_type="dpmsolver++")

    def __call__(self, image, mask, prompt=None, negative_prompt=None, seed=0):
        return self.inpaint_batch([InpaintJob(image, mask, prompt, negative_prompt, seed)])[0]

    def inpaint_batch(self, jobs: list["InpaintJob"]) -> list[np.ndarray]:
        """Several clips in one pipeline call (a GPU runs the UNet on all of them at once).
        Each clip keeps its own seeded generator, so its noise does not depend on the batch."""
        import torch
        from PIL import Image

        todo = [j for j in jobs if j.mask.any()]
        if todo:
            self.load()
            # the authors resize the frame and mask to 512x512 and the result back to the frame size
            out = self._pipe(
                prompt=[j.prompt or "" for j in todo], negative_prompt=[j.negative_prompt or "" for j in todo],
                image=[Image.fromarray(j.image).resize((self.size, self.size), Image.BICUBIC) for j in todo],
                mask_image=[Image.fromarray(j.mask.astype(np.uint8) * 255).resize((self.size, self.size), Image.NEAREST)
                            for j in todo],
                height=self.size, width=self.size, guidance_scale=self.guidance_scale,
                num_inference_steps=self.steps, output_type="np",
                generator=[torch.Generator("cpu").manual_seed(j.seed) for j in todo]).images  # (N, S, S, 3) in [0, 1]
            for j, result in zip(todo, out):
                result = (np.clip(result, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
                h, w = j.image.shape[:2]
                j.result = blend(j.image, cv2.resize(result, (w, h), interpolation=cv2.INTER_CUBIC), j.mask)
        return [j.result if j.result is not None else j.image.copy() for j in jobs]


@dataclass
class InpaintJob:
    image: np.ndarray  # (H, W, 3) RGB
    mask: np.ndarray  # (H, W) bool: pixels to fill
    prompt: str | None = None
    negative_prompt: str | None = None
    seed: int = 0
    result: np.ndarray | None = None


def inpaint_all(inpainter: Inpainter, jobs: list[InpaintJob], batch: int) -> list[np.ndarray]:
    """Every job's result: in batches of `batch` where the backend batches, else one by one."""
    if batch > 1 and hasattr(inpainter, "inpaint_batch"):
        return [r for k in range(0, len(jobs), batch) for r in inpainter.inpaint_batch(jobs[k:k + batch])]
    return [inpainter(j.image, j.mask, j.prompt, j.negative_prompt, j.seed) for j in jobs]


SCHEDULERS = ("default", "dpmsolver++")


def make_inpainter(backend: str = "opencv", **options: Any) -> Inpainter:
    """"opencv", "sd" or "lama"; options are the backend's dataclass fields."""
    if backend == "opencv":
        return OpenCVInpainter(**options)
    if backend == "sd":
        if options.get("scheduler", "default") not in SCHEDULERS:
            raise ValueError(f"unknown SD scheduler {options['scheduler']!r}; use one of {SCHEDULERS}")
        return SDInpainter(**options)
    if backend == "lama":
        from curation.background.lama import LamaInpainter

        return LamaInpainter(**options)
    raise ValueError(f"unknown inpainting backend {backend!r}; use 'opencv', 'sd' or 'lama'")

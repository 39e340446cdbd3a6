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
        import torch
        from PIL import Image

        if not mask.any():
            return image.copy()
        self.load()
        h, w = image.shape[:2]
        # the authors resize the frame and mask to 512x512 and the result back to the frame size
        img = Image.fromarray(image).resize((self.size, self.size), Image.BICUBIC)
        msk = Image.fromarray(mask.astype(np.uint8) * 255).resize((self.size, self.size), Image.NEAREST)
        generator = torch.Generator("cpu").manual_seed(seed)
        out = self._pipe(prompt=prompt or "", negative_prompt=negative_prompt, image=img,
                         mask_image=msk, height=self.size, width=self.size,
                         guidance_scale=self.guidance_scale, num_inference_steps=self.steps,
                         generator=generator, output_type="np").images[0]  # (S, S, 3) in [0, 1]
        out = (np.clip(out, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        out = cv2.resize(out, (w, h), interpolation=cv2.INTER_CUBIC)
        return blend(image, out, mask)


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

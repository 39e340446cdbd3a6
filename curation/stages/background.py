"""Background stage (paper 3.1): one clean background per clip, from its middle frame.

"We create a clean background image by removing the subjects and objects ... we dilate the
foreground mask ... use an inpainting algorithm ... the background entity word as the
positive prompt and 'Any human or any object, complex pattern and texture' as the negative
prompt ... we only use the middle frame." Recipe details follow the authors' release: the
mask is the union of every reference mask on frame 2, dilated with a 4x4 kernel of ones for
3 iterations and hole-filled; SD 2 inpainting runs at 512x512 with guidance 12, and its
result is resized back and blended through the mask (pixels outside it stay the original).

A background is only as clean as its mask: when a subject has no reference on the middle
frame, its pixels are not masked and would stay in the "clean" background, so no background
row is written and a background-level note says why (the clip itself still passes).
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pyarrow as pa

from curation.background.inpaint import SD_DEFAULT_MODEL, InpaintJob, Inpainter, inpaint_all, make_inpainter
from curation.background.mask import foreground_mask
from curation.imaging import decode_png, encode_png, paste_mask
from curation.keys import child_key
from curation.stage import Outcome, Resources, Stage, note
from warehouse_schemas import registry

REASONS = {
    "subject_missing_on_middle_frame": "a subject has no reference (mask) on frame 2, so it "
                                       "would remain in the background; no background written",
    "no_middle_frame": "the clip has no frame 2 to build a background from",
    "mask_too_large": "the dilated foreground covers more than max_mask_fraction of the frame; "
                      "the inpainted 'background' would be mostly invented",
    "background_error": "building the background failed on this clip (detail: exception)",
}

BACKGROUNDS = pa.list_(pa.struct(list(registry.schema("backgrounds"))))
MIDDLE_FRAME = 2  # frame2 = 50% of the clip (paper 3.1: "we only use the middle frame")
NEGATIVE_PROMPT = "Any human or any object, complex pattern and texture"  # paper 3.1
EMPTY_PROMPT = "clean and empty background"  # authors' release, when there is no background word


@dataclass
class BackgroundStage(Stage):
    name: ClassVar[str] = "background"
    reads: ClassVar[tuple[str, ...]] = ("clip_key", "entities", "frames", "references")
    writes: ClassVar[tuple[pa.Field, ...]] = (pa.field("backgrounds", BACKGROUNDS),)

    backend: str = "opencv"  # "opencv" (CPU default), "sd" (paper: SD inpainting) or "lama" (one pass)
    sd_model: str = SD_DEFAULT_MODEL  # authors' release: Stable Diffusion 2 inpainting
    sd_size: int = 512  # authors' release: inpaint at 512x512, resize back
    guidance_scale: float = 12.0  # authors' release
    steps: int = 50  # diffusers' default denoising steps (our choice)
    sd_batch: int = 8  # sd backend: clips per pipeline call (cost lever: a fuller GPU); 1 = one by one
    sd_scheduler: str = "default"  # "dpmsolver++": DPM-Solver++, ~20 steps for 50 PNDM ones (cost lever)
    lama_model: str = ""  # lama backend: big-lama's TorchScript file or its directory (Apache-2.0)
    device: str = "auto"  # SD backend: cuda when present
    opencv_method: str = "telea"  # our choice: Telea fast marching
    opencv_radius: int = 5  # our choice, pixels
    dilate_kernel: int = 4  # authors' release: 4x4 kernel of ones
    dilate_iterations: int = 3  # authors' release
    negative_prompt: str = NEGATIVE_PROMPT
    empty_prompt: str = EMPTY_PROMPT
    required_types: tuple[str, ...] = ("subject",)  # entity types that must be masked on frame 2
    max_mask_fraction: float = 0.9  # our choice: above this, little real background is left
    seed: int = 0  # per-clip generator seed = seed + crc32(clip_key): batch-independent
    resources: Resources = field(default_factory=lambda: Resources(cpus=0.5, batch_size=4))

    def models_needed(self) -> dict[str, str]:
        if self.backend == "lama":
            return {"lama_model": self.lama_model}
        return {"sd_model": self.sd_model} if self.backend == "sd" else {}

    def setup(self) -> None:
        self._inpainter = self.make_inpainter()

    def make_inpainter(self) -> Inpainter:
        if self.backend == "sd":
            inp = make_inpainter("sd", model=self.sd_model, size=self.sd_size, steps=self.steps,
                                 guidance_scale=self.guidance_scale, device=self.device,
                                 scheduler=self.sd_scheduler)
        elif self.backend == "lama":
            inp = make_inpainter("lama", model=self.lama_model, device=self.device)
        else:
            return make_inpainter(self.backend, method=self.opencv_method, radius=self.opencv_radius)
        inp.load()  # once per actor, not on the first clip
        return inp

    def process_batch(self, rows: list[dict]) -> list[Outcome]:
        prepared = [self.prepare(row) for row in rows]
        jobs = [p for p in prepared if isinstance(p, _Job)]
        results = inpaint_all(self._inpainter, [j.inpaint for j in jobs], self.sd_batch)
        for job, clean in zip(jobs, results):
            job.clean = clean
        return [self.finish(p) if isinstance(p, _Job) else p for p in prepared]

    def prepare(self, row: dict) -> "_Job | Outcome":
        """The clip's inpainting job, or an entity-free note saying why there is none."""
        clip = row["clip_key"]
        entities = row.get("entities") or []
        frame = next((f for f in row.get("frames") or [] if f["frame_index"] == MIDDLE_FRAME), None)
        if frame is None:
            return self._skip("no_middle_frame", f"frames present: "
                              f"{sorted(f['frame_index'] for f in row.get('frames') or [])}")
        refs = [r for r in row.get("references") or [] if r["frame_index"] == MIDDLE_FRAME]
        found = {r["word"] for r in refs}
        missing = [e["word"] for e in entities if e["type"] in self.required_types and e["word"] not in found]
        if missing:
            return Outcome({"backgrounds": []}, notes=[
                note("background", "subject_missing_on_middle_frame",
                     f"{w!r} has no reference on frame {MIDDLE_FRAME}", entity=w, frame_index=MIDDLE_FRAME)
                for w in missing])
        image = decode_png(frame["png"])
        mask = self.mask(image.shape[0], image.shape[1], refs)
        if mask.mean() > self.max_mask_fraction:
            return self._skip("mask_too_large", f"foreground covers {mask.mean():.0%} of frame "
                              f"{MIDDLE_FRAME} (max {self.max_mask_fraction:.0%})")
        words = [e["word"] for e in entities if e["type"] == "background"]
        prompt = ", ".join(words) if words else self.empty_prompt
        seed = (self.seed + zlib.crc32(clip.encode())) % (1 << 31)
        return _Job(clip, words, InpaintJob(image, mask, prompt, self.negative_prompt, seed))

    def finish(self, job: "_Job") -> Outcome:
        return Outcome({"backgrounds": [{
            "background_key": child_key(job.clip, "background"),
            "clip_key": job.clip,
            "word": ", ".join(job.words) or None,
            "png": encode_png(job.clean),
            "mask_png": encode_png(job.inpaint.mask),
            "inpainter": self._inpainter.id,
            # prompts are recorded only for inpainters that read them
            "prompt": job.inpaint.prompt if self.backend == "sd" else None,
            "negative_prompt": self.negative_prompt if self.backend == "sd" else None,
        }]})

    def mask(self, height: int, width: int, refs: list[dict[str, Any]]) -> np.ndarray:
        """Union of the references' masks on the full frame, dilated and hole-filled."""
        masks = (paste_mask(decode_png(r["mask_png"], "L"), r["box_xyxy"], width, height) for r in refs)
        return foreground_mask(masks, height, width, self.dilate_kernel, self.dilate_iterations)

    @staticmethod
    def _skip(reason: str, detail: str) -> Outcome:
        return Outcome({"backgrounds": []}, notes=[note("background", reason, detail,
                                                        frame_index=MIDDLE_FRAME)])


@dataclass
class _Job:
    """One clip's background in progress."""

    clip: str
    words: list[str]
    inpaint: InpaintJob
    clean: np.ndarray | None = None

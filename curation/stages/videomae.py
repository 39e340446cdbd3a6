"""VideoMAE undesirable-clip classifier (paper A.1).

The paper fine-tunes VideoMAE (Tong et al., 2022) on 40K hand-labelled clips with five
classes: desirable, still foreground image, slight motion, screen-in-screen and computer
screen recording, and keeps only desirable clips. This stage runs such a checkpoint (one
written by `alchemist train-filter`, or any VideoMAE classifier whose labels are the five
classes of `curation/videomae/classes.py`) on every clip:

  scores   p_desirable, p_still_image, p_slight_motion, p_screen_in_screen,
           p_screen_recording: softmax class probabilities, stored in `clip_scores`.
  decide   by default a clip is rejected when its most probable class is not `desirable`
           (reason = that class); per-class probability thresholds and a minimum
           p_desirable are configurable and re-tunable from clip_scores without a re-run.

Frames: the model's `num_frames` (16 for VideoMAE-base) uniformly over the clip, scaled and
cropped by the checkpoint's own image processor (`curation/videomae/data.py`, the same code
`train-filter` validated with). Clips are batched through the model, in half precision on GPU.

Which undesirable-clip filter runs (`motion`, `videomae` or `both`) is the run config's
`undesirable_filter`; the motion stage stays the default until a fine-tuned checkpoint exists.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pyarrow as pa

from curation.stage import Outcome, Resources, Stage
from curation.videomae.classes import DESIRABLE, LABELS, SCORE_NAMES, UNDESIRABLE
from curation.videomae.classes import REASONS as CLASS_REASONS
from curation.videomae.classes import normalize_label, score_name

REASONS = {
    **CLASS_REASONS,
    "videomae_error": "the clip could not be decoded or classified (detail has the error)",
}


@dataclass
class VideoMAEStage(Stage):
    """Five-class VideoMAE probabilities per clip and the keep-only-desirable decision."""

    name: ClassVar[str] = "videomae"
    reads: ClassVar[tuple[str, ...]] = ("source", "start_s", "end_s")
    writes: ClassVar[tuple[pa.Field, ...]] = tuple(pa.field(s, pa.float32()) for s in SCORE_NAMES)
    scores: ClassVar[tuple[str, ...]] = SCORE_NAMES
    retunable: ClassVar[bool] = True  # decide() reads only the stored scores

    # A fine-tuned five-class checkpoint: the `--out` of `alchemist train-filter`, or a hub id.
    model: str = ""
    device: str = "auto"  # auto: cuda when visible
    half: bool = True  # bf16/fp16 on GPU (fp32 on CPU regardless)
    model_batch: int = 16  # clips per forward pass (our choice; ~3 GB at fp16 for ViT-B)
    decode_threads: int = 2  # clips decoded concurrently (PyAV releases the GIL)
    # Decision (paper A.1: "we only retain the desirable ... samples").
    reject_argmax: bool = True  # reject when the most probable class is not desirable
    thresholds: dict[str, float] = field(default_factory=dict)  # class -> reject if p >= this
    min_desirable: float = 0.0  # reject when p_desirable is below this
    resources: Resources = field(default_factory=lambda: Resources(cpus=1.0, batch_size=16))

    def __post_init__(self) -> None:
        for label in self.thresholds:
            if label not in UNDESIRABLE:
                raise ValueError(f"thresholds key {label!r} is not an undesirable class; "
                                 f"use {', '.join(UNDESIRABLE)}")

    # ------------------------------------------------------------ model

    def models_needed(self) -> dict[str, str]:
        return {"model": self.model}  # a `train-filter` checkpoint; empty until the user has one

    def setup(self) -> None:
        from transformers import VideoMAEForVideoClassification, VideoMAEImageProcessor

        from model import model_registry
        from curation.videomae.data import num_frames_of

        if not self.model:
            raise model_registry.ModelUnavailable(
                "the videomae stage needs a fine-tuned checkpoint: run `alchemist train-filter` "
                "and set stages.videomae.model to its --out, or use undesirable_filter: motion")
        self._device = model_registry.device(self.device)
        dtype = model_registry.half_dtype_for(self._device) if self.half else None
        self._model = model_registry.load(VideoMAEForVideoClassification, self.model,
                                  device=self._device, dtype=dtype)
        self._processor = model_registry.load(VideoMAEImageProcessor, self.model)
        self._num_frames = num_frames_of(self._model.config)
        try:
            self._columns = checkpoint_columns(self._model.config.id2label)
        except ValueError as e:
            raise model_registry.ModelUnavailable(f"{self.model}: {e}") from None

    def classify(self, videos: list) -> list[dict]:
        """Uint8 videos `(T, H, W, 3)` -> one {p_<label>: probability} dict per video."""
        import torch

        from curation.videomae.data import pixel_values

        out = []
        for start in range(0, len(videos), self.model_batch):
            x = pixel_values(videos[start:start + self.model_batch], self._processor)
            with torch.inference_mode():
                logits = self._model(pixel_values=x.to(self._device, self._model.dtype)).logits
            probs = logits.float().softmax(-1).cpu().numpy()  # (B, K)
            for row in probs:
                values = dict.fromkeys(SCORE_NAMES, 0.0)
                for column, p in zip(self._columns, row):
                    values[column] += float(p)
                out.append(values)
        return out

    # ------------------------------------------------------------ batch

    def _read(self, row: dict) -> Any:
        from curation.videomae.data import read_frames

        try:
            return read_frames(row["source"], row["start_s"], row["end_s"], self._num_frames,
                               self._processor)
        except Exception as e:  # errors are data: one unreadable clip never fails the batch
            return e

    def process_batch(self, rows: list[dict]) -> list[dict | Exception]:
        """Class probabilities per clip (clips decoded concurrently, classified together)."""
        with ThreadPoolExecutor(max(1, self.decode_threads)) as pool:
            videos = list(pool.map(self._read, rows))
        ok = [i for i, v in enumerate(videos) if not isinstance(v, Exception)]
        results: list = list(videos)
        for i, values in zip(ok, self.classify([videos[i] for i in ok]) if ok else []):
            results[i] = values
        return results

    # ------------------------------------------------------------ decision

    def decide(self, values: dict) -> Outcome:
        """Apply the thresholds to stored probabilities (cheap; re-run to re-tune)."""
        probs = {label: float(values[score_name(label)]) for label in LABELS}
        for label in UNDESIRABLE:
            t = self.thresholds.get(label)
            if t is not None and probs[label] >= t:
                return Outcome.reject(label, f"p_{label} {probs[label]:.3f} >= {t}", **values)
        worst = max(UNDESIRABLE, key=probs.__getitem__)
        if probs[DESIRABLE] < self.min_desirable:
            return Outcome.reject(worst, f"p_desirable {probs[DESIRABLE]:.3f} < {self.min_desirable}; "
                                  f"most likely {worst} ({probs[worst]:.3f})", **values)
        if self.reject_argmax and probs[worst] > probs[DESIRABLE]:
            return Outcome.reject(worst, f"most probable class {worst} ({probs[worst]:.3f}) > "
                                  f"p_desirable {probs[DESIRABLE]:.3f}", **values)
        return Outcome(values=values)


def checkpoint_columns(id2label: dict) -> list[str]:
    """Score column for each model output id; ValueError when a label is not one of ours."""
    columns = []
    for i in range(len(id2label)):
        label = id2label.get(i, id2label.get(str(i)))
        try:
            canonical = normalize_label(label or "")
        except ValueError:
            canonical = None
        if canonical is None:
            raise ValueError(f"checkpoint label {i}={label!r} is not one of the five classes "
                             f"({', '.join(LABELS)}); fine-tune one with `alchemist train-filter`")
        columns.append(score_name(canonical))
    return columns

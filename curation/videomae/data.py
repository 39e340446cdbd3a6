"""Clip reading -> VideoMAE input tensors, shared by the stage and `train-filter`.

Training and inference must see exactly the same pixels, or a checkpoint's validation
predictions cannot be reproduced by the stage; so both call `read_frames` + `pixel_values`:

  1. `sample_times`: `num_frames` instants uniformly over the clip (segment centres), the
     VideoMAE recipe of one frame per equal segment (16 for VideoMAE-base, Tong et al. 2022).
  2. `read_frames`: one forward PyAV pass (`video_io.FrameSampler`); only the decoded frame
     nearest to each instant is converted, already scaled so its short edge is the
     processor's `size` (converting every frame of a 1080p clip would cost more than the model).
  3. `pixel_values`: the checkpoint's own `VideoMAEImageProcessor` (resize, centre crop,
     rescale, normalise) -> `(B, T, C, H, W)` float32.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from curation.videomae.classes import LABEL2ID

# ---------------------------------------------------------------- frame sampling


def sample_times(start_s: float, end_s: float, num_frames: int) -> list[float]:
    """Centres of `num_frames` equal segments of [start_s, end_s)."""
    step = (end_s - start_s) / num_frames
    return [start_s + step * (k + 0.5) for k in range(num_frames)]


def decode_size(processor: Any, width: int, height: int) -> tuple[int, int]:
    """(W, H) to decode at: what the processor would resize the frame to anyway."""
    size = processor.size
    short = getattr(size, "shortest_edge", None)
    if short:
        scale = short / min(width, height)
        return max(1, round(width * scale)), max(1, round(height * scale))
    if getattr(size, "height", None) and getattr(size, "width", None):
        return int(size.width), int(size.height)
    return width, height


def _stream_end_s(stream: Any) -> float | None:
    """Seconds from the stream's first timestamp to its end, when the container says."""
    if stream.duration is not None:
        return float(stream.duration * stream.time_base)
    if stream.container.duration is not None:
        return stream.container.duration / 1_000_000 - float((stream.start_time or 0) * stream.time_base)
    return None


def read_frames(path: str | Path, start_s: float | None, end_s: float | None, num_frames: int,
                processor: Any) -> np.ndarray:
    """`num_frames` RGB frames uniformly over the clip, `(T, H, W, 3)` uint8.

    `start_s`/`end_s` None mean the whole video. Each frame is the decoded frame nearest its
    instant (`video_io.FrameSampler`), so a clip with fewer frames than `num_frames` repeats
    frames, as VideoMAE's own sampler does.
    """
    from curation.video_io import FrameSampler

    start = float(start_s or 0.0)
    with FrameSampler(path) as sampler:
        stream = sampler.stream
        end = end_s if end_s is not None and np.isfinite(end_s) else _stream_end_s(stream)
        if end is None or end <= start:
            raise ValueError(f"clip window [{start}, {end}) of {path} is empty or has no known end")
        sampler.size = decode_size(processor, stream.width, stream.height)
        frames = [sampler.nearest(t)[0] for t in sample_times(start, float(end), num_frames)]
    return np.stack(frames)


# ---------------------------------------------------------------- model inputs


def pixel_values(videos: Sequence[np.ndarray], processor: Any) -> torch.Tensor:
    """`B` uint8 videos `(T, H, W, 3)` -> normalised `(B, T, C, H, W)` float32."""
    batch = processor([list(v) for v in videos], return_tensors="pt")
    return batch["pixel_values"]


def num_frames_of(config: Any) -> int:
    """Frames per clip the model was built for (its position embeddings fix the count)."""
    return int(config.num_frames)


@dataclass(frozen=True)
class ClipItem:
    """One labelled clip: a video path, an optional window, a canonical label."""

    path: str
    start_s: float | None
    end_s: float | None
    label: str

    @property
    def label_id(self) -> int:
        return LABEL2ID[self.label]


class ClipDataset(torch.utils.data.Dataset):
    """Labelled clips -> `(pixel_values (T, C, H, W), label id)`.

    `cache=True` keeps each clip's tensor after the first read (small label sets; the tiny
    test sets), otherwise every epoch decodes again (DataLoader workers parallelise it).
    """

    def __init__(self, items: Sequence[ClipItem], processor: Any, num_frames: int,
                 cache: bool = False):
        self.items, self.processor, self.num_frames = list(items), processor, num_frames
        self.cache: dict[int, torch.Tensor] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.items)

    def clip_tensor(self, index: int) -> torch.Tensor:
        if self.cache is not None and index in self.cache:
            return self.cache[index]
        item = self.items[index]
        frames = read_frames(item.path, item.start_s, item.end_s, self.num_frames, self.processor)
        x = pixel_values([frames], self.processor)[0]  # (T, C, H, W)
        if self.cache is not None:
            self.cache[index] = x
        return x

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.clip_tensor(index), self.items[index].label_id

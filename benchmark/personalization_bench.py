"""MSRVTT-Personalization evaluator throughput (videos/s), tiny random models, batch 1 vs 8.

The benchmark folder is written directly in the release's layout (no curation run): eight
samples of a ladybug crawling over bricks, each with its references, and the "generated"
videos are the clips themselves. Subject mode: CLIP, GroundingDINO + SAM + DINO, RAFT.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

SAMPLES = 8
FRAMES, HW = 16, (64, 96)  # small clips: the tiny models' cost, not decoding, dominates


def write_benchmark(root: Path) -> Path:
    from curation.synthetic import moving_object_clip, write_video
    from evaluation.msrvtt import layout, modes

    videos = root / "generated"
    for i in range(SAMPLES):
        frames, masks = moving_object_clip(seed=i, n_frames=FRAMES, hw=HW)
        folder = root / "bench" / layout.SAMPLES_DIR / f"video{i}"
        layout.write_text_files(folder, "A ladybug crawls across the ground.", {"subject": ["ladybug"]})
        layout.write_video_file(folder, frames, 8.0)
        for k, p in enumerate(layout.FRAME_PERCENTILES, 1):
            j = layout.percentile_index(FRAMES, p)
            layout.write_rgb(folder / layout.frame_name(k), frames[j])
            ys, xs = np.nonzero(masks[j])
            box = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
            crop = layout.box_crop_rgba(frames[j], box, masks[j][box[1]:box[3], box[0]:box[2]])
            layout.write_rgba(folder / layout.ref_name("ladybug", k), crop)
        write_video(frames, videos / f"video{i}.mp4", fps=8.0)
    modes.write_modes(root / "bench")
    return videos


def run() -> list[dict]:
    from model.model_registry import torch_threads
    from evaluation.msrvtt.evaluator import EvalSettings, evaluate
    from evaluation.msrvtt.tiny import write_tiny_eval_models

    rows, rates = [], {}
    with tempfile.TemporaryDirectory() as tmp, torch_threads(1):
        root = Path(tmp)
        videos = write_benchmark(root)
        tiny = write_tiny_eval_models(root / "tiny")
        for batch in (1, 8):
            settings = EvalSettings(clip=tiny["clip"], grounding_dino=tiny["grounding_dino"], sam=tiny["sam"],
                                    dino=tiny["dino"], raft=tiny["raft"], raft_arch="small",
                                    batch_size=batch, device="cpu")
            evaluate(root / "bench", videos, "subject", root / f"warm{batch}", settings)  # loads, caches
            start = time.perf_counter()
            row = evaluate(root / "bench", videos, "subject", root / f"eval{batch}", settings)
            rates[batch] = row["videos"] / (time.perf_counter() - start)
            rows.append({"benchmark": "personalization_eval", "metric": f"videos/s, batch {batch}",
                         "value": rates[batch], "unit": "videos/s",
                         "notes": f"{SAMPLES} videos of {FRAMES} frames {HW[1]}x{HW[0]}, subject mode, tiny models"})
    rows.append({"benchmark": "personalization_eval", "metric": "batch 8 / batch 1", "value": rates[8] / rates[1],
                 "unit": "x", "notes": "same run, side by side"})
    return rows

"""A tiny random VideoMAE classifier, written offline, for tests and `alchemist models tiny`.

Same classes as the real checkpoint (`VideoMAEForVideoClassification` +
`VideoMAEImageProcessor`, the paper's five labels), so the stage and `train-filter` load it
through the very same `from_pretrained` path; only the sizes are small.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from curation.videomae.classes import ID2LABEL, LABEL2ID

# Our choice: 32x32 frames, 8 frames, tubelets of 2 frames x 8x8 px -> 4x4x4 = 64 tokens,
# small enough that a training test runs in seconds on two CPU cores.
TINY = dict(
    image_size=32, patch_size=8, num_frames=8, tubelet_size=2,
    hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
)


def write_tiny_videomae(out_dir: str | Path, seed: int = 0, **overrides: Any) -> Path:
    """Write a random tiny classifier + processor to `out_dir`; returns the directory."""
    import torch
    from transformers import (
        VideoMAEConfig,
        VideoMAEForVideoClassification,
        VideoMAEImageProcessor,
    )

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg = VideoMAEConfig(**{**TINY, **overrides}, num_labels=len(ID2LABEL),
                         id2label=dict(ID2LABEL), label2id=dict(LABEL2ID))
    torch.manual_seed(seed)
    VideoMAEForVideoClassification(cfg).save_pretrained(out)
    size = cfg.image_size if isinstance(cfg.image_size, int) else cfg.image_size[0]
    VideoMAEImageProcessor(size={"shortest_edge": size},
                           crop_size={"height": size, "width": size}).save_pretrained(out)
    return out

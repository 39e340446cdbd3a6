"""Resolution x frame-count buckets with batch sizes and sampling weights (paper B.2, Table 7).

Every step draws one bucket by weight (from the step's keyed generator), so every batch is
uniform in shape; the rectified flow's time shift follows the bucket's token count
(model.rectified_flow.resolution_shift). Table 7's weights are given per table half; the
`paper` presets keep them as printed (they need not sum to 1: they are normalised).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Bucket:
    frames: int
    height: int
    width: int
    batch: int  # global batch size
    weight: float

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.frames, self.height, self.width


def _table7(height: int, width: int, rows) -> tuple[Bucket, ...]:
    return tuple(Bucket(f, height, width, b, w) for f, b, w in rows if b)


# paper Table 7, stage II and III: (frames, batch, sampling weight in %)
_PAPER_288 = [(17, 2048, 40), (49, 832, 1.5), (73, 512, 1.5), (97, 448, 1.5), (121, 384, 1.5),
              (145, 256, 1.5), (193, 192, 0.83), (289, 128, 0.83), (385, 64, 0.83)]
_PAPER_576 = [(17, 512, 40), (49, 192, 2.5), (73, 128, 2.5), (97, 64, 2.5), (121, 64, 2.5)]

BUCKET_PRESETS = {
    "paper": _table7(288, 512, _PAPER_288) + _table7(576, 1024, _PAPER_576),
    "paper-288p": _table7(288, 512, _PAPER_288),
    # CPU: the tiny autoencoder (4x8x8) takes 1 + 4k frames and multiples of 16 px.
    "cpu-tiny": (Bucket(5, 32, 32, 2, 1.0),),
    "cpu-two": (Bucket(5, 32, 32, 2, 0.7), Bucket(9, 16, 32, 4, 0.3)),
    "toy": (Bucket(4, 16, 16, 32, 1.0),),  # training/toy.py: pixel space, batch 32
}


def buckets(name: str) -> tuple[Bucket, ...]:
    if name not in BUCKET_PRESETS:
        raise KeyError(f"unknown bucket preset {name!r}; known: {sorted(BUCKET_PRESETS)}")
    return BUCKET_PRESETS[name]


def draw_bucket(preset: tuple[Bucket, ...], seed: int, step: int) -> Bucket:
    """The bucket of one step: the same on every worker (keyed by seed and step only)."""
    if len(preset) == 1:  # nothing to draw
        return preset[0]
    weights = np.array([b.weight for b in preset], dtype=float)
    rng = np.random.default_rng([seed, step, 0xB0C])
    return preset[int(rng.choice(len(preset), p=weights / weights.sum()))]

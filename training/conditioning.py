"""Anti-bias conditioning (paper 3.3, A.3): which references condition one training sample.

Per sample, with a generator keyed by (seed, step, global sample index):
1. the number of conditional entities, uniform in [min_entities, max_entities] (A.3: 1-3);
2. the entities, drawn with replacement from the clip's subjects (and objects, our rule:
   A.3 names subjects, and objects are bound and grounded the same way);
3. per entity, the number of reference images, uniform in [1, max_images] (A.3: 1-3);
4. the images, drawn with replacement from the entity's reference crops; for a subject with
   face crops each draw is a face crop with probability `face_rate` (ours, 0.5);
5. the background, included with probability 0.5 (A.3).
Entities without any reference image cannot condition and are not candidates.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.config import ConditioningConfig
from training.reader import ClipRecord

CONDITIONAL_TYPES = ("subject", "object")


@dataclass(frozen=True)
class Slot:
    word: str | None  # the entity word in the caption; None = a background without a word
    kind: str  # "reference", "face" or "background"
    image: bytes  # PNG (RGBA for references)


def sample_rng(seed: int, step: int, index: int) -> np.random.Generator:
    """The generator of one sample's draws: independent of the number of workers."""
    return np.random.default_rng([seed, step, index])


def max_slots(cfg: ConditioningConfig) -> int:
    return cfg.max_entities * cfg.max_images + (cfg.background_prob > 0)


def candidates(record: ClipRecord, cfg: ConditioningConfig) -> list[dict]:
    types = CONDITIONAL_TYPES if cfg.objects else CONDITIONAL_TYPES[:1]
    return [e for e in record.entities if e["type"] in types and record.references.get(e["word"])]


def draw_images(record: ClipRecord, word: str, n: int, cfg: ConditioningConfig, rng) -> list[Slot]:
    refs, faces = record.references[word], record.faces.get(word, [])
    slots = []
    for _ in range(n):
        if faces and rng.random() < cfg.face_rate:
            slots.append(Slot(word, "face", faces[rng.integers(len(faces))]))
        else:
            slots.append(Slot(word, "reference", refs[rng.integers(len(refs))]))
    return slots


def draw_conditions(record: ClipRecord, cfg: ConditioningConfig, rng: np.random.Generator) -> list[Slot]:
    """The reference slots of one sample (empty when the clip has no conditional entity)."""
    pool = candidates(record, cfg)
    slots = []
    if pool:
        n_entities = int(rng.integers(cfg.min_entities, cfg.max_entities + 1))
        chosen = [pool[i] for i in rng.permutation(len(pool))] if cfg.all_entities else [
            pool[rng.integers(len(pool))] for _ in range(n_entities)]
        for entity in chosen:
            n_images = int(rng.integers(1, cfg.max_images + 1))
            slots += draw_images(record, entity["word"], n_images, cfg, rng)
    if record.background is not None and rng.random() < cfg.background_prob:
        word, png = record.background
        slots.append(Slot(word, "background", png))
    return slots

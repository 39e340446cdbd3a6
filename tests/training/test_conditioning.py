"""Paper A.3 draws: counts uniform over their ranges, entities with replacement, background
at 50%, face crops at their rate (chi-square at p > 0.01 over many draws)."""
from collections import Counter

import numpy as np
from scipy.stats import chisquare

from training.conditioning import draw_conditions, max_slots, sample_rng
from training.config import ConditioningConfig
from training.reader import ClipRecord

DRAWS = 4000


def record(words=("man", "dog", "ball"), faces=True) -> ClipRecord:
    entities = [{"word": w, "type": "subject" if w != "ball" else "object", "char_start": 0, "char_end": 1}
                for w in words]
    refs = {w: [f"{w}{k}".encode() for k in range(3)] for w in words}
    return ClipRecord("d", "k", "/x.mp4", " ".join(words), 0.0, 1.0, entities, refs,
                      {"man": [b"face0", b"face1"]} if faces else {}, ("beach", b"bg"))


def test_background_rate_and_slot_bound():
    cfg = ConditioningConfig()
    rec = record()
    with_bg = sum(any(s.kind == "background" for s in draw_conditions(rec, cfg, sample_rng(0, 0, i)))
                  for i in range(DRAWS))
    assert chisquare([with_bg, DRAWS - with_bg], [DRAWS / 2] * 2).pvalue > 0.01
    assert max(len(draw_conditions(rec, cfg, sample_rng(1, 0, i))) for i in range(500)) <= max_slots(cfg)


def test_entity_and_image_counts_are_uniform_and_draws_are_with_replacement(monkeypatch):
    """Instrument the generator: the first integer draw is the entity count, then per entity
    a choice and an image count."""
    import training.conditioning as cond

    seen = {"entities": Counter(), "images": Counter(), "words": Counter(), "repeat": 0}
    real = cond.draw_images

    def spy(rec, word, n, cfg, rng):
        seen["images"][n] += 1
        seen["words"][word] += 1
        return real(rec, word, n, cfg, rng)

    monkeypatch.setattr(cond, "draw_images", spy)
    cfg, rec = ConditioningConfig(), record()
    for i in range(DRAWS):
        before = sum(seen["images"].values())
        slots = cond.draw_conditions(rec, cfg, sample_rng(2, 0, i))
        n = sum(seen["images"].values()) - before
        seen["entities"][n] += 1
        words = [s.word for s in slots if s.kind != "background"]
        seen["repeat"] += len(set(words)) < n
    for key, values in (("entities", (1, 2, 3)), ("images", (1, 2, 3)), ("words", ("man", "dog", "ball"))):
        counts = [seen[key][v] for v in values]
        assert chisquare(counts).pvalue > 0.01, (key, counts)
    # With replacement: an entity is drawn twice in a sample often (P = 1 - P(all distinct)).
    expected_repeat = DRAWS * (1 / 3) * ((1 - 2 / 3) + (1 - 2 / 9))  # n = 2 and n = 3
    assert abs(seen["repeat"] - expected_repeat) < 4 * np.sqrt(expected_repeat)


def test_face_rate_and_objects_rule():
    cfg = ConditioningConfig(face_rate=0.3, objects=False)
    kinds = Counter()
    for i in range(DRAWS):
        for s in draw_conditions(record(), cfg, sample_rng(3, 0, i)):
            assert s.word != "ball"  # objects switched off
            if s.word == "man":
                kinds[s.kind] += 1
    total = kinds["face"] + kinds["reference"]
    assert chisquare([kinds["face"], kinds["reference"]], [0.3 * total, 0.7 * total]).pvalue > 0.01


def test_draws_are_keyed_by_seed_step_and_index():
    cfg, rec = ConditioningConfig(), record()
    a = draw_conditions(rec, cfg, sample_rng(0, 5, 7))
    assert a == draw_conditions(rec, cfg, sample_rng(0, 5, 7))
    assert any(draw_conditions(rec, cfg, sample_rng(0, 5, i)) != a for i in range(8, 12))

"""Score entity extractors on the labelled caption set (curation/entities/eval/).

Every extractor runs the way the `entities` stage runs it: `extract(captions)` for the raw
answers, then the A.2 rules (`rules.apply_rules_batch`). Scored per part (train, heldout):

  precision / recall per entity type   a predicted word matches a label of the same type when
                                       its lower-cased words end with the label's words
                                       ("red sports car" matches "sports car"), one to one;
                                       words come from the typed entities before the verdict,
                                       so a rejected clip's entities are scored too
  verdict accuracy                     kept / no_subject / plural_subject vs the label (any
                                       other rejection, e.g. invalid_output, counts as wrong)
  disagreements                        each caption whose words or verdict differ

`alchemist eval-entities` prints them; `make bench` reports the headline numbers.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from curation.entities.parse import KEYS
from curation.entities.rules import RuleResult, apply_rules_batch

EVAL_DIR = Path(__file__).parent / "eval"
PARTS = ("train", "heldout")
KEPT = "kept"
VERDICTS = (KEPT, "no_subject", "plural_subject")


@dataclass(frozen=True)
class Labelled:
    id: str
    caption: str
    words: dict[str, list[str]]  # type -> expected entity words
    verdict: str
    tags: tuple[str, ...] = ()


def load_part(part: str, folder: Path = EVAL_DIR) -> list[Labelled]:
    """The labelled captions of one part (`train` or `heldout`)."""
    rows = []
    with open(folder / f"{part}.jsonl", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                rows.append(Labelled(r["id"], r["caption"], {k: r[k] for k in KEYS},
                                     r["verdict"], tuple(r.get("tags", ()))))
    return rows


def _tokens(word: str) -> tuple[str, ...]:
    return tuple(word.lower().split())


def matches(predicted: str, label: str) -> bool:
    """A predicted word names the labelled entity: its words end with the label's words."""
    p, lab = _tokens(predicted), _tokens(label)
    return len(p) >= len(lab) > 0 and p[-len(lab):] == lab


def match_words(predicted: list[str], labels: list[str]) -> tuple[list[str], list[str]]:
    """One-to-one matching: (unmatched predictions, unmatched labels)."""
    left = list(labels)
    extra = []
    for word in predicted:
        hit = next((lab for lab in left if matches(word, lab)), None)
        if hit is None:
            extra.append(word)
        else:
            left.remove(hit)
    return extra, left


def verdict_of(result: RuleResult) -> str:
    return result.reason or KEPT


@dataclass
class Score:
    """Counts over one part; `rates()` gives the printed numbers."""

    n: int = 0
    verdict_ok: int = 0
    tp: Counter = field(default_factory=Counter)
    n_pred: Counter = field(default_factory=Counter)
    n_label: Counter = field(default_factory=Counter)
    disagreements: list[dict] = field(default_factory=list)

    def add(self, item: Labelled, result: RuleResult) -> None:
        self.n += 1
        predicted = {k: [e.word for e in result.typed if e.type == k] for k in KEYS}
        verdict = verdict_of(result)
        self.verdict_ok += verdict == item.verdict
        diff = {}
        for kind in KEYS:
            extra, missed = match_words(predicted[kind], item.words[kind])
            self.n_pred[kind] += len(predicted[kind])
            self.n_label[kind] += len(item.words[kind])
            self.tp[kind] += len(item.words[kind]) - len(missed)
            if extra or missed:
                diff[kind] = {"extra": extra, "missed": missed}
        if diff or verdict != item.verdict:
            self.disagreements.append(dict(id=item.id, caption=item.caption, expected=item.verdict,
                                           got=verdict, detail=result.detail, words=diff))

    def rates(self) -> dict[str, float]:
        out = {"verdict_accuracy": self.verdict_ok / max(self.n, 1)}
        for kind in KEYS:
            out[f"{kind}_precision"] = self.tp[kind] / max(self.n_pred[kind], 1)
            out[f"{kind}_recall"] = self.tp[kind] / max(self.n_label[kind], 1)
        return out


def score(items: list[Labelled], results: list[RuleResult]) -> Score:
    s = Score()
    for item, result in zip(items, results):
        s.add(item, result)
    return s


def evaluate(extractor, items: list[Labelled]) -> Score:
    """Run `extractor` (set up) and the A.2 rules on the captions; score against the labels."""
    captions = [i.caption for i in items]
    raws = extractor.extract(captions)
    return score(items, apply_rules_batch(captions, raws))


def evaluate_parts(extractor, parts: tuple[str, ...] = PARTS,
                   folder: Path = EVAL_DIR) -> dict[str, Score]:
    return {part: evaluate(extractor, load_part(part, folder)) for part in parts}

"""Evaluation modes (paper 4.1): which samples, which prompt, which conditioning images.

Each mode is three aligned lists, written to `<benchmark>/modes/<mode>.json`:
  samples     sample names
  prompts     the caption of each sample
  conditions  per sample, the entity words with their image paths (relative to the benchmark)

  subject             exactly one subject word, with its whole-subject reference images
  face                exactly one subject word that has face crops, conditioned on the faces
  multi_subject       every subject and object word with references, at least two of them
  subject_background  exactly one subject with references, plus the background word bound
                      to background.jpg (needs a background word and a background image)
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from curation.errors import OperatorError
from evaluation.msrvtt import layout

MODES = ("subject", "face", "multi_subject", "subject_background")
# Which identity metric each mode reports beside Text-S, Vid-S and Dync-D.
IDENTITY_METRIC = {"subject": "subj_s", "face": "face_s", "multi_subject": "subj_s",
                   "subject_background": "subj_s"}


@dataclass
class Condition:
    word: str
    type: str  # "subject" | "object" | "background"
    images: list[str]  # paths relative to the benchmark root


@dataclass
class ModeLists:
    mode: str
    samples: list[str]
    prompts: list[str]
    conditions: list[list[Condition]]

    def to_dict(self) -> dict:
        return {"mode": self.mode, "samples": self.samples, "prompts": self.prompts,
                "conditions": [[asdict(c) for c in cs] for cs in self.conditions]}

    @classmethod
    def from_dict(cls, raw: dict) -> "ModeLists":
        return cls(raw["mode"], list(raw["samples"]), list(raw["prompts"]),
                   [[Condition(**c) for c in cs] for cs in raw["conditions"]])


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise OperatorError(f"unknown mode {mode!r}; use one of {', '.join(MODES)}")
    return mode


def _rel(benchmark: Path, paths: list[Path]) -> list[str]:
    return [str(p.relative_to(benchmark)) for p in paths]


def conditions_for(sample: layout.Sample, mode: str, benchmark: Path) -> list[Condition] | None:
    """The sample's conditioning in `mode`, or None when the sample is not in that mode."""
    subjects = [w for w in sample.word_tags["subject"] if w in sample.refs]
    if mode == "subject" and len(sample.word_tags["subject"]) == 1 and subjects:
        return [Condition(subjects[0], "subject", _rel(benchmark, sample.refs[subjects[0]]))]
    if mode == "face" and len(sample.word_tags["subject"]) == 1 and sample.word_tags["subject"][0] in sample.faces:
        word = sample.word_tags["subject"][0]
        return [Condition(word, "subject", _rel(benchmark, sample.faces[word]))]
    if mode == "multi_subject":
        words = [(w, t) for t in ("subject", "object") for w in sample.word_tags[t] if w in sample.refs]
        if len(words) >= 2:
            return [Condition(w, t, _rel(benchmark, sample.refs[w])) for w, t in words]
    if (mode == "subject_background" and len(sample.word_tags["subject"]) == 1 and subjects
            and sample.word_tags["background"] and sample.background is not None):
        return [Condition(subjects[0], "subject", _rel(benchmark, sample.refs[subjects[0]])),
                Condition(sample.word_tags["background"][0], "background",
                          _rel(benchmark, [sample.background]))]
    return None


def build_mode(benchmark: Path, mode: str) -> ModeLists:
    benchmark = Path(benchmark)
    lists = ModeLists(check_mode(mode), [], [], [])
    for folder in layout.sample_dirs(benchmark):
        sample = layout.read_sample(folder)
        conds = conditions_for(sample, mode, benchmark)
        if conds is not None:
            lists.samples.append(sample.name)
            lists.prompts.append(sample.caption)
            lists.conditions.append(conds)
    return lists


def write_modes(benchmark: Path) -> dict[str, int]:
    """Every mode's lists under `<benchmark>/modes/`; returns the sample count per mode."""
    folder = Path(benchmark) / "modes"
    folder.mkdir(parents=True, exist_ok=True)
    counts = {}
    for mode in MODES:
        lists = build_mode(benchmark, mode)
        (folder / f"{mode}.json").write_text(json.dumps(lists.to_dict(), indent=1))
        counts[mode] = len(lists.samples)
    return counts


def load_mode(benchmark: Path, mode: str) -> ModeLists:
    path = Path(benchmark) / "modes" / f"{check_mode(mode)}.json"
    if not path.exists():
        raise OperatorError(f"{path} does not exist; run `alchemist bench build` or `bench import` "
                            f"on {benchmark} first")
    return ModeLists.from_dict(json.loads(path.read_text()))

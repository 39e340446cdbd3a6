"""`alchemist retune`: preview new thresholds on stored scores, without recomputing anything.

Filters store their scores in `clip_scores` before applying a threshold (docs/architecture.md,
"Stages"), so a stage's `decide(values)` can be re-run on the warehouse: this reports which
clips a new setting would newly reject or newly pass. Newly passing clips never ran the
stages after this one, so they need a re-curation to get their frames and references.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from curation import warehouse
from curation.config import STAGE_CLASSES, ConfigError, RunConfig, build_stage, stage_class
from curation.profiles import stage_settings


def retunable_stages() -> tuple[str, ...]:
    """Stages whose `decide(scores)` needs only the scores they put in `clip_scores`."""
    return tuple(name for name in STAGE_CLASSES if stage_class(name).retunable)


@dataclass
class RetuneReport:
    stage: str
    settings: dict  # the run's resolved settings with the overrides on top
    overrides: dict = field(default_factory=dict)
    clips: int = 0  # candidate clips with this stage's scores
    newly_rejected: list[tuple[str, str]] = field(default_factory=list)  # (clip key, reason)
    newly_passing: list[str] = field(default_factory=list)
    reasons_now: Counter = field(default_factory=Counter)

    def lines(self, samples: int = 5) -> list[str]:
        out = [f"stage {self.stage}: {self.clips} scored clips, the run's settings with "
               f"overrides {self.overrides or 'none'}",
               f"  settings: {self.settings}",
               f"  newly rejected: {len(self.newly_rejected)}",
               *(f"    {k}  {r}" for k, r in self.newly_rejected[:samples]),
               f"  newly passing:  {len(self.newly_passing)} (re-curate them: later stages never ran)",
               *(f"    {k}" for k in self.newly_passing[:samples]),
               "  rejections by this stage under the new settings: "
               + (", ".join(f"{r} {n}" for r, n in self.reasons_now.most_common()) or "none")]
        return out


def parse_settings(pairs: list[str]) -> dict:
    """`["residual_min=0.03", "steady_min=0.4"]` -> typed values (YAML scalars)."""
    settings = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ConfigError(f"--set takes NAME=VALUE, not {pair!r}")
        settings[name.strip()] = yaml.safe_load(value)
    return settings


def _scores_by_clip(root: Path, stage: str) -> dict[str, dict]:
    rows = warehouse.read_table(root, "clip_scores").to_pylist()
    by_clip: dict[str, dict] = {}
    for r in rows:
        if r["stage"] == stage:
            by_clip.setdefault(r["clip_key"], {})[r["name"]] = r["value"]
    return by_clip


def run_settings(root: Path, stage_name: str) -> dict:
    """The stage's resolved settings in the run that wrote the dataset (Parquet metadata)."""
    shards = warehouse.committed_shards(root)
    if not shards:
        raise ConfigError(f"{root} has no committed shard to re-tune; run `alchemist curate` first")
    meta = warehouse.file_metadata(warehouse.table_path(root, "clip_scores", shards[0]))
    config = RunConfig(**meta.get("config", {}))
    return stage_settings(config, stage_name)


def retune(root: str | Path, stage_name: str, overrides: dict) -> RetuneReport:
    """Re-run `stage_name`'s decide() on the stored scores with the run's own settings and
    `overrides` on top."""
    if stage_name not in retunable_stages():
        raise ConfigError(f"stage {stage_name!r} cannot be re-tuned from clip_scores; "
                          f"these can: {', '.join(retunable_stages())}")
    root = Path(root)
    settings = {**run_settings(root, stage_name), **overrides}
    stage = build_stage(stage_name, settings)
    rejected_here = {r["clip_key"] for r in warehouse.read_table(root, "rejections").to_pylist()
                     if r["level"] == "clip" and r["stage"] == stage_name}
    report = RetuneReport(stage_name, settings, overrides)
    for clip, values in sorted(_scores_by_clip(root, stage_name).items()):
        report.clips += 1
        outcome = stage.decide(values)
        if outcome.reason is not None:
            report.reasons_now[outcome.reason] += 1
            if clip not in rejected_here:
                report.newly_rejected.append((clip, outcome.reason))
        elif clip in rejected_here:
            report.newly_passing.append(clip)
    return report

"""Run configuration: a profile (offline | lite | full) plus per-stage overrides from YAML.

  profile: offline
  shard_size: 32
  undesirable_filter: motion        # motion | videomae | both (issue 4)
  stages:
    motion: {residual_min: 0.05}
    grounding: {resources: {gpus: 1, batch_size: 16}}

Every mistake (unknown key, unknown stage or setting, bad value) is one `ConfigError` line that
names the fix; nothing is silently ignored.
"""
from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from curation.errors import OperatorError
from curation.execute import Limits
from curation.stage import Resources, Stage

# Stage name -> "module:Class". Order here is pipeline order (cheap filters before models).
STAGE_CLASSES = {
    "ingest": "curation.stages.ingest:IngestStage",
    "shots": "curation.stages.shots:ShotStage",
    "motion": "curation.stages.motion:MotionStage",
    "videomae": "curation.stages.videomae:VideoMAEStage",
    "entities": "curation.stages.entities:EntitiesStage",
    "frames": "curation.stages.frames:FramesStage",
    "grounding": "curation.stages.grounding:GroundingStage",
    "faces": "curation.stages.faces:FacesStage",
    "background": "curation.stages.background:BackgroundStage",
}
UNDESIRABLE_FILTERS = {"motion": ("motion",), "videomae": ("videomae",), "both": ("motion", "videomae")}


class ConfigError(OperatorError, ValueError):
    """An operator mistake in the run configuration; the message is one line naming the fix."""


@dataclass
class RunConfig:
    profile: str = "offline"
    shard_size: int = 32  # manifest rows per shard (one Airflow mapped task each)
    undesirable_filter: str = "motion"  # issue 4: motion until a fine-tuned VideoMAE exists
    stages: dict[str, dict] = field(default_factory=dict)  # per-stage overrides
    skip: list[str] = field(default_factory=list)  # stage names to leave out of the run
    # Bounds (docs/architecture.md "Warm stages and bounds"), defaults in execute.Limits:
    row_timeout_s: float = Limits.row_timeout_s  # per row and stage, else `<stage>_timeout`
    max_row_crashes: int = Limits.max_row_crashes  # worker deaths, else `<stage>_crashed`
    actor_idle_s: float = Limits.actor_idle_s  # a warm stage actor unused this long ends itself

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def load_config(path: str | Path | None = None, profile: str | None = None) -> RunConfig:
    return config_from_mapping(read_yaml(path) if path is not None else {}, profile)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping from `path`, or one ConfigError line naming what is wrong."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist; pass an existing YAML file to --config")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path} is not valid YAML ({str(e).splitlines()[0]}); fix its syntax") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must be a mapping of settings, not {type(raw).__name__}")
    return raw


def config_from_mapping(raw: dict[str, Any], profile: str | None = None) -> RunConfig:
    known = {f.name for f in dataclasses.fields(RunConfig)}
    unknown = set(raw) - known
    if unknown:
        raise ConfigError(f"unknown config key(s) {sorted(unknown)}; known keys: {sorted(known)}")
    config = RunConfig(**raw)
    if profile:
        config.profile = profile
    validate(config)
    return config


def validate(config: RunConfig) -> None:
    from curation.profiles import PROFILES

    if config.profile not in PROFILES:
        raise ConfigError(f"unknown profile {config.profile!r}; use one of {sorted(PROFILES)}")
    if config.undesirable_filter not in UNDESIRABLE_FILTERS:
        raise ConfigError(f"undesirable_filter must be one of {sorted(UNDESIRABLE_FILTERS)}, "
                          f"not {config.undesirable_filter!r}")
    if not isinstance(config.shard_size, int) or config.shard_size < 1:
        raise ConfigError(f"shard_size must be a positive integer, not {config.shard_size!r}")
    for name in ("row_timeout_s", "max_row_crashes", "actor_idle_s"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ConfigError(f"{name} must be a positive number, not {value!r}")
    for name in [*config.stages, *config.skip]:
        if name not in STAGE_CLASSES:
            raise ConfigError(f"unknown stage {name!r} in config; stages are {list(STAGE_CLASSES)}")


def set_input_roots(config: RunConfig, roots: str | list[str] | None) -> RunConfig:
    """Ingest's input roots from an operator setting (the `alchemist_input_roots` Airflow
    Variable, `ALCHEMIST_INPUT_ROOTS`): a JSON list or comma-separated folders. Empty or None
    keeps the default, the manifest's own folder tree."""
    if isinstance(roots, str):
        text = roots.strip()
        roots = yaml.safe_load(text) if text.startswith("[") else [r for r in text.split(",")]
    roots = [str(r).strip() for r in roots or [] if str(r).strip()]
    if roots:
        config.stages = {**config.stages,
                         "ingest": {**config.stages.get("ingest", {}), "input_roots": roots}}
    return config


def stage_class(name: str) -> type[Stage]:
    module, _, cls = STAGE_CLASSES[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def build_stage(name: str, settings: dict) -> Stage:
    """Instantiate one stage from settings, checking every key against its dataclass fields."""
    cls = stage_class(name)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(settings) - set(fields)
    if unknown:
        raise ConfigError(f"stage {name!r} has no setting(s) {sorted(unknown)}; "
                          f"its settings are {sorted(fields)}")
    kwargs = dict(settings)
    if isinstance(kwargs.get("resources"), dict):
        try:
            kwargs["resources"] = Resources(**kwargs["resources"])
        except TypeError:
            raise ConfigError(f"stage {name!r}: resources take cpus, gpus, batch_size, actors; "
                              f"got {sorted(kwargs['resources'])}") from None
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"stage {name!r}: {e}") from None

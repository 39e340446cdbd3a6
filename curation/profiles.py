"""Named profiles: which stages run and with which model choices.

- offline: weights that ship inside packages plus classical stand-ins; runs anywhere.
- lite:    real hub checkpoints at CPU-friendly sizes (needs them in the local HF cache).
- full:    the paper's choices, on GPUs.
"""
from __future__ import annotations

from curation.config import (STAGE_CLASSES, UNDESIRABLE_FILTERS, ConfigError, RunConfig,
                             build_stage, stage_class)
from curation.manifest import SCHEMA as MANIFEST_SCHEMA
from curation.stage import Stage

_BASE = {name: {} for name in STAGE_CLASSES}


def _gpu(batch_size: int) -> dict:
    """One GPU per actor; CPU requests stay small so decoding actors fit beside it."""
    return {"cpus": 1.0, "gpus": 1.0, "batch_size": batch_size, "actors": 1}


PROFILES: dict[str, dict[str, dict]] = {
    "offline": {
        **_BASE,
        "entities": {"backend": "spacy"},
        "grounding": {"detector": "offline", "segmenter": "grabcut"},
        "faces": {"backend": "mtcnn"},
        "background": {"backend": "opencv"},
    },
    "lite": {
        **_BASE,
        "entities": {"backend": "spacy"},
        "grounding": {"detector": "grounding_dino", "segmenter": "sam",
                      "detector_model": "IDEA-Research/grounding-dino-tiny",
                      "segmenter_model": "facebook/sam-vit-base"},
        "faces": {"backend": "mtcnn"},
        "background": {"backend": "opencv"},
    },
    "full": {
        **_BASE,
        "shots": {"resources": _gpu(batch_size=32)},
        "videomae": {"resources": _gpu(batch_size=32)},
        "entities": {"backend": "vllm", "resources": _gpu(batch_size=1024)},  # a whole shard per call
        "grounding": {"detector": "grounding_dino", "segmenter": "sam",
                      "detector_model": "IDEA-Research/grounding-dino-tiny",
                      "segmenter_model": "facebook/sam-vit-huge", "resources": _gpu(batch_size=16)},
        "faces": {"backend": "yolo"},
        "background": {"backend": "sd", "resources": _gpu(batch_size=8)},
    },
}


def stage_names(config: RunConfig) -> list[str]:
    """Pipeline order, with the undesirable-clip filter(s) the config asks for."""
    chosen_filters = UNDESIRABLE_FILTERS[config.undesirable_filter]
    names = []
    for name in STAGE_CLASSES:
        if name in ("motion", "videomae") and name not in chosen_filters:
            continue
        if name not in config.skip:
            names.append(name)
    return names


def build_stages(config: RunConfig) -> list[Stage]:
    """The run's stages in order, checked so that every column a stage reads is written
    by a stage before it (or is a manifest column, for the first)."""
    stages = [build_stage(name, stage_settings(config, name)) for name in stage_names(config)]
    check_columns(stages)
    return stages


def stage_settings(config: RunConfig, name: str) -> dict:
    """A stage's resolved settings in a run: its profile's, then the config's overrides."""
    return {**PROFILES[config.profile].get(name, {}), **config.stages.get(name, {})}


def check_columns(stages: list[Stage], inputs: tuple[str, ...] = tuple(MANIFEST_SCHEMA.names)) -> None:
    """Raise ConfigError naming the stage, the column and the stage that would write it,
    when a stage reads a column that no earlier stage of the list writes."""
    available = set(inputs)
    for position, stage in enumerate(stages):
        missing = [c for c in stage.reads if c not in available]
        if missing:
            column = missing[0]
            writers = [n for n in STAGE_CLASSES
                       if column in {f.name for f in stage_class(n).writes}]
            earlier = [s.name for s in stages[:position]] or ["(none: it runs first)"]
            hint = (f"it is written by {' or '.join(repr(w) for w in writers)}, which must run "
                    f"before it (remove it from `skip`)" if writers else "no stage writes it")
            raise ConfigError(f"stage {stage.name!r} reads column {column!r}, which no earlier "
                              f"stage writes ({', '.join(earlier)}); {hint}")
        written = {f.name for f in stage.writes}
        available = available | written if stage.keeps_input_columns else written

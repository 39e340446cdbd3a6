"""Named profiles: which stages run and with which model choices.

- offline: weights that ship inside packages plus classical stand-ins; runs anywhere.
- lite:    real hub checkpoints at CPU-friendly sizes (needs them in the local HF cache).
- full:    the paper's choices, on GPUs.
"""
from __future__ import annotations

from curation.config import STAGE_CLASSES, UNDESIRABLE_FILTERS, RunConfig, build_stage
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
    profile = PROFILES[config.profile]
    stages = []
    for name in stage_names(config):
        settings = {**profile.get(name, {}), **config.stages.get(name, {})}
        stages.append(build_stage(name, settings))
    return stages

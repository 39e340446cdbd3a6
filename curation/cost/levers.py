"""Named lever sets: run-config overrides (real stage settings) and corpus assumptions that
`alchemist cost --levers NAME` applies on top of a profile. Each lever trades something;
COSTS.md says what."""
from __future__ import annotations

import copy
import dataclasses

from curation.config import RunConfig, validate
from curation.cost.estimate import Corpus

# `stages`: per-stage settings, exactly as in a run config; `cost`: Corpus fields.
LEVER_SETS: dict[str, dict] = {
    "none": {},
    # Keeps every model of the paper; only how they run changes.
    "cheap": {
        "stages": {
            "background": {"sd_scheduler": "dpmsolver++", "steps": 20},
            "entities": {"prefix_caching": True},
            "grounding": {"detector_frames": 1},
        },
    },
    # Smaller or one-pass models where the paper's are the cost.
    "fast": {
        "stages": {
            "background": {"backend": "lama"},
            "entities": {"prefix_caching": True},
            "grounding": {"detector_frames": 1, "segmenter_model": "facebook/sam-vit-base"},
        },
        "cost": {"videomae_frames": 8},
    },
}


def apply_levers(config: RunConfig, corpus: Corpus, name: str) -> tuple[RunConfig, Corpus]:
    levers = LEVER_SETS[name]
    config = copy.deepcopy(config)
    for stage, settings in levers.get("stages", {}).items():
        config.stages[stage] = {**config.stages.get(stage, {}), **settings}
    validate(config)
    return config, dataclasses.replace(corpus, **levers.get("cost", {}))

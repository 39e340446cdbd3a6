"""`alchemist models tiny`: tiny random checkpoints of every architecture Alchemist loads.

They are saved in each hub's own format and loaded through the same `from_pretrained` path as
the real weights, so tests exercise the real code without a model hub. Never use them for
real outputs: the `offline` profile uses shipped weights and classical stand-ins instead.
"""
from __future__ import annotations

import importlib
from pathlib import Path

# name -> "module:function(out_dir) -> path or {name: path}"
WRITERS = {
    "grounding_dino": "curation.localize.tiny:write_tiny_grounding_dino",
    "sam": "curation.localize.tiny:write_tiny_sam",
    "sd_inpaint": "curation.background.tiny:write_tiny_sd_inpaint",
    "mistral": "curation.entities.tiny:write_tiny_mistral",
    "videomae": "curation.videomae.tiny:write_tiny_videomae",
    "dit_encoders": "model.tiny:write_tiny_model_checkpoints",
    "bench_eval": "evaluation.msrvtt.tiny:write_tiny_eval_models",  # CLIP, DINO, RAFT, GroundingDINO, SAM
}


def write_all(out: Path, only: list[str] | None = None) -> dict[str, str]:
    unknown = set(only or []) - set(WRITERS)
    if unknown:
        from curation.errors import OperatorError

        raise OperatorError(f"unknown tiny model(s) {sorted(unknown)}; choose from {sorted(WRITERS)}")
    written: dict[str, str] = {}
    for name, target in WRITERS.items():
        if only and name not in only:
            continue
        module, _, func = target.partition(":")
        result = getattr(importlib.import_module(module), func)(Path(out) / name)
        if isinstance(result, dict):
            written.update({f"{name}.{k}": str(v) for k, v in result.items()})
        else:
            written[name] = str(result)
    return written

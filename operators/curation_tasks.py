"""What the `curate` DAG's tasks do, as plain functions (the DAG file stays thin).

Operators know the runner, not the stages' insides. Every task is an idempotent transaction
keyed by the dataset directory: a retried `run_shard` skips a committed shard, a retried
`plan` returns the same shards, and only paths and counts travel through XCom.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

PLAN_FILE = "_plan/plan.json"  # written by the runner's plan: manifest, resolved config, shards


def dataset_dir(warehouse: str, dataset: str, run_id: str) -> str:
    """`<warehouse>/<dataset>/<run id>`: each DAG run writes its own dataset version."""
    safe_run = re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)
    return str(Path(warehouse).expanduser().resolve() / dataset / safe_run)


def plan(manifest: str, out: str, profile: str | None, config_path: str | None,
         shard_size: int = 0) -> list[int]:
    from curation.config import load_config
    from curation.profiles import build_stages
    from curation.runner import plan as plan_shards, preflight

    config = load_config(config_path or None, profile or None)
    if shard_size:
        config.shard_size = shard_size
    preflight(build_stages(config))  # a missing model fails here, once, not in every shard task
    return plan_shards(manifest, out, config)


def _saved_config(out: str):
    from curation.config import RunConfig, validate

    config = RunConfig(**json.loads((Path(out) / PLAN_FILE).read_text())["config"])
    validate(config)
    return config


def run_shard(out: str, shard: int) -> dict:
    from curation.runner import ensure_ray, run_shard as run_one

    ensure_ray(os.environ.get("ALCHEMIST_RAY_ADDRESS") or None)
    result = run_one(out, shard, _saved_config(out))
    return {"shard": result.shard, "skipped": result.skipped, "counts": result.counts}


def commit(out: str, shards: list[int]) -> dict:
    from curation import warehouse
    from curation.runner import run_meta

    success = warehouse.commit(out, shards, run_meta(_saved_config(out)))
    return {"location": out, "counts": success["counts"], "shards": len(success["shards"]),
            "profile": success["config"]["profile"], "code_version": success["code_version"]}

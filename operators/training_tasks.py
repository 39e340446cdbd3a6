"""What the `train` DAG's tasks do, as plain functions (the DAG file stays thin).

A run is started by an `alchemist_curated` asset event (scheduled) or by a run input that
carries such an event's extra (`airflow dags test train --conf '{"asset_event": {...}}'`,
which is how `make demo` runs it: `dags test` has no scheduler). Both go through
`job_from_event`, so a test of one is a test of the other. Only paths and numbers travel
through XCom.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from curation.errors import OperatorError


def event_extra(params: dict, triggering_asset_events, asset) -> dict:
    """The newest triggering event's extra, else the run input's `asset_event`."""
    events = list(triggering_asset_events.get(asset, [])) if triggering_asset_events else []
    if events:
        return dict(events[-1].extra or {})
    return dict(params.get("asset_event") or {})


def job_from_event(extra: dict, params: dict, run_id: str) -> dict:
    """The dataset an event names, the training config and the run directory."""
    location = extra.get("location")
    if not location:
        raise OperatorError("no dataset location: start `train` from an alchemist_curated event, "
                            "or pass --conf '{\"asset_event\": {\"location\": DATASET}}'")
    if not (Path(location) / "_SUCCESS").exists():
        raise OperatorError(f"{location} is not a committed dataset (no _SUCCESS); re-run its curation")
    safe_run = re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)
    models = os.environ.get("ALCHEMIST_MODELS", str(Path(location).parent / "_models"))
    return {"dataset": str(location), "config": params.get("config") or "demo",
            "steps": int(params.get("steps") or 0),
            "run_dir": params.get("out") or str(Path(models).expanduser().resolve() / safe_run)}


def _config(job: dict):
    from training.config import train_config

    try:
        return train_config(job["config"], **({"steps": job["steps"]} if job["steps"] else {}))
    except KeyError as err:
        raise OperatorError(str(err.args[0])) from None


def encode(job: dict) -> dict:
    """The latent cache of the job's dataset (idempotent: committed shards are kept)."""
    from training.cache import encode_dataset

    success = encode_dataset(job["dataset"], _config(job), os.environ.get("ALCHEMIST_RAY_ADDRESS") or None)
    return {"location": success["location"], "counts": success["counts"]}


def train(job: dict) -> dict:
    """Train from the cache; resumes from the run directory's latest checkpoint on a retry."""
    from dataclasses import replace

    from training.trainer import run_training

    cfg = replace(_config(job), use_cache=True)
    workers = int(os.environ.get("ALCHEMIST_TRAIN_WORKERS", "0"))
    summary = run_training(cfg, [job["dataset"]], job["run_dir"], workers=workers,
                           ray_address=os.environ.get("ALCHEMIST_RAY_ADDRESS") or None, resume=True)
    return {"checkpoint": summary["checkpoint"], "loss_curve": summary["loss_curve"],
            "metrics": summary["final"], "dataset": job["dataset"], "config": job["config"]}

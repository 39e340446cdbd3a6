"""
### Train the personalization DiT on a curated dataset

Scheduled by the `alchemist_curated` asset: every committed dataset starts a run. The
dataset's location comes from the triggering asset event (or from the run input
`asset_event`, the same extra, when started by hand or by `airflow dags test`). Runs
`encode` (the latent cache) then `train` with a named config, and emits the
`alchemist_model` asset whose extra holds the checkpoint path and final metrics.
Paper: VideoAlchemy 3.3, A.3, B.2. Code: training/, operators/training_tasks.py.
"""
from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import Param, dag, task

from operators.assets import CURATED, MODEL
from operators.policy import DEFAULT_ARGS, operator_errors_fail


@dag(
    schedule=[CURATED],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["alchemist", "training"],
    default_args=DEFAULT_ARGS,
    doc_md=__doc__,
    params={
        "config": Param(os.environ.get("ALCHEMIST_TRAIN_CONFIG", "demo"), type="string",
                        description="named training config (training/config.py TRAIN_CONFIGS)"),
        "steps": Param(0, type="integer", minimum=0, description="override the config's steps; 0: the config's"),
        "out": Param("", type="string", description="run directory; default <warehouse>/_models/<run id>"),
        "asset_event": Param({}, type="object", description="an alchemist_curated event's extra, for manual runs"),
    },
)
def train():
    @task
    def resolve(params=None, triggering_asset_events=None, run_id=None) -> dict:
        from operators import training_tasks

        with operator_errors_fail():
            extra = training_tasks.event_extra(params, triggering_asset_events, CURATED)
            return training_tasks.job_from_event(extra, params, run_id)

    @task
    def encode(job: dict) -> dict:
        from operators import training_tasks

        with operator_errors_fail():
            return training_tasks.encode(job)

    @task(outlets=[MODEL])
    def fit(job: dict, cache: dict, outlet_events=None) -> dict:
        from operators import training_tasks

        with operator_errors_fail():
            result = training_tasks.train(job)
        outlet_events[MODEL].extra = result
        return result

    job = resolve()
    fit(job, encode(job))


train()

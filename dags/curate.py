"""
### Curate a video-caption manifest into personalization training data

Plans shards from a manifest, runs the stage list of the chosen profile over each shard as
one mapped task named by its shard and row range (Ray inside: the `alchemist_ray` connection
or `ALCHEMIST_RAY_ADDRESS` names the cluster), then commits the dataset (`_SUCCESS` with
counts, schema versions, config), writes its run report (`_report/index.html`: rejection
funnel, top entity words, contact sheet) and emits the `alchemist_curated` asset, whose event
`extra` carries the dataset's location and counts. Each shard's counts show in its name and
note; the run's note links the report.
Paper: VideoAlchemy 3.1, A.1-A.2. Tables: see README "Tables".
"""
from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import Param, dag, task

from operators.assets import CURATED
from operators.policy import DEFAULT_ARGS, operator_errors_fail, run_params
from operators.tasks import run_shard


@dag(
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["alchemist", "curation"],
    default_args=DEFAULT_ARGS,
    doc_md=__doc__,
    params={
        "manifest": Param(os.environ.get("ALCHEMIST_MANIFEST", ""), type="string",
                          description="CSV/JSONL/Parquet manifest, Panda-70M CSV or video2dataset folder"),
        "out": Param("", type="string", description="dataset directory; default <warehouse>/<dataset>/<run id>"),
        **run_params(dataset="curated"),
    },
)
def curate():
    @task
    def plan(params=None, run_id=None) -> dict:
        from airflow.sdk import Variable

        from operators import curation_tasks

        out = params["out"] or curation_tasks.dataset_dir(
            os.environ.get("ALCHEMIST_WAREHOUSE", "warehouse"), params["dataset"], run_id)
        with operator_errors_fail():
            shards = curation_tasks.plan(params["manifest"], out, params["profile"], params["config"],
                                         params["shard_size"],
                                         Variable.get("alchemist_input_roots", default=None))
            rows = curation_tasks.shard_rows(out, shards)
        return {"out": out, "shards": shards, "rows": [rows[s] for s in shards]}

    @task
    def shard_args(planned: dict) -> list[dict]:
        return [{"out": planned["out"], "shard": s, "rows": r} for s, r in zip(planned["shards"], planned["rows"])]

    @task(outlets=[CURATED])
    def commit(planned: dict, results: list[dict], outlet_events=None, dag_run=None) -> dict:
        from operators import curation_tasks, run_notes

        with operator_errors_fail():
            summary = curation_tasks.commit(planned["out"], planned["shards"])
        run_notes.write_notes(dag_run.dag_id, dag_run.run_id, summary,
                              {i: r["funnel"] for i, r in enumerate(results)})
        outlet_events[CURATED].extra = {k: summary[k] for k in ("location", "counts", "report", "profile")}
        return summary

    planned = plan()
    results = run_shard.expand_kwargs(shard_args(planned))
    commit(planned, results)


curate()

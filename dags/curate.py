"""
### Curate a video-caption manifest into personalization training data

Plans shards from a manifest, runs the stage list of the chosen profile over each shard as
one mapped task (Ray inside; set `ALCHEMIST_RAY_ADDRESS` to use a cluster), then commits the
dataset (`_SUCCESS` with counts, schema versions, config) and emits the `alchemist_curated`
asset, whose event `extra` carries the dataset's location and counts.
Paper: VideoAlchemy 3.1, A.1-A.2. Tables: see README "Tables".
"""
from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import Asset, Param, dag, task
from airflow.sdk.exceptions import AirflowFailException

CURATED = Asset("alchemist_curated")


@dag(
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["alchemist", "curation"],
    default_args={"retries": 2},
    doc_md=__doc__,
    params={
        "manifest": Param(os.environ.get("ALCHEMIST_MANIFEST", ""), type="string",
                          description="CSV/JSONL/Parquet manifest, Panda-70M CSV or video2dataset folder"),
        "dataset": Param("curated", type="string", description="dataset name under the warehouse"),
        "out": Param("", type="string", description="dataset directory; default <warehouse>/<dataset>/<run id>"),
        "profile": Param("offline", enum=["offline", "lite", "full"]),
        "config": Param("", type="string", description="optional YAML run config"),
        "shard_size": Param(0, type="integer", minimum=0, description="rows per shard; 0: the config's"),
    },
)
def curate():
    @task
    def plan(params=None, run_id=None) -> dict:
        from curation.errors import OperatorError
        from operators import curation_tasks

        out = params["out"] or curation_tasks.dataset_dir(
            os.environ.get("ALCHEMIST_WAREHOUSE", "warehouse"), params["dataset"], run_id)
        try:
            shards = curation_tasks.plan(params["manifest"], out, params["profile"], params["config"],
                                         params["shard_size"])
        except OperatorError as e:  # a retry cannot fix a bad config or a missing file
            raise AirflowFailException(str(e)) from None
        return {"out": out, "shards": shards}

    @task
    def shard_args(planned: dict) -> list[dict]:
        return [{"out": planned["out"], "shard": s} for s in planned["shards"]]

    @task(max_active_tis_per_dagrun=2)
    def run_shard(out: str, shard: int) -> dict:
        from operators import curation_tasks

        return curation_tasks.run_shard(out, shard)

    @task(outlets=[CURATED])
    def commit(planned: dict, results: list[dict], outlet_events=None) -> dict:
        from operators import curation_tasks

        summary = curation_tasks.commit(planned["out"], planned["shards"])
        outlet_events[CURATED].extra = summary
        return summary

    planned = plan()
    results = run_shard.expand_kwargs(shard_args(planned))
    commit(planned, results)


curate()

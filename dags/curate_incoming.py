"""
### Curate every manifest that arrives in a watched folder, on a schedule

Each run lists the watched folder (`ALCHEMIST_INCOMING`, or the `incoming` param), keeps the
manifest files whose content (SHA-256 fingerprint) has no published version yet, plans each
as its own dataset version `<warehouse>/<dataset>/<fingerprint[:16]>/`, runs all their shards
as one mapped task (pool, timeout and retries as in `curate`), and publishes each version
once: `_SUCCESS`, run report, a record in `<warehouse>/<dataset>/_versions/`, and an
`alchemist_curated` asset event. A manifest whose run failed is picked up again by the next
run (at least once); a published one never is (exactly once). A run with nothing new does
nothing. The cron schedule comes from `ALCHEMIST_INCOMING_CRON` (default every 15 minutes).
"""
from __future__ import annotations

import os
from datetime import datetime

from airflow.sdk import Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowSkipException

from operators.assets import CURATED
from operators.policy import DEFAULT_ARGS, operator_errors_fail, run_params
from operators.tasks import run_shard

SCHEDULE = os.environ.get("ALCHEMIST_INCOMING_CRON", "*/15 * * * *")


@dag(
    schedule=SCHEDULE,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,  # two runs listing the same folder would plan the same version twice
    tags=["alchemist", "curation", "scheduled"],
    default_args=DEFAULT_ARGS,
    doc_md=__doc__,
    params={
        "incoming": Param(os.environ.get("ALCHEMIST_INCOMING", ""), type="string",
                          description="watched folder of manifest files (.csv .tsv .jsonl .parquet)"),
        "warehouse": Param(os.environ.get("ALCHEMIST_WAREHOUSE", "warehouse"), type="string"),
        **run_params(dataset="incoming"),
    },
)
def curate_incoming():
    @task
    def plan(params=None) -> dict:
        from operators import incoming

        with operator_errors_fail():
            return incoming.plan(params["incoming"], params["warehouse"], params["dataset"], params["profile"],
                                 params["config"], params["shard_size"])

    @task
    def shard_args(planned: dict) -> list[dict]:
        return planned["shards"]

    @task
    def version_args(planned: dict) -> list[dict]:
        return planned["versions"]

    @task(outlets=[CURATED], map_index_template="{{ version_label }}")
    def publish(version: dict, params=None, run_id=None, outlet_events=None) -> dict:
        from operators import incoming

        get_current_context()["version_label"] = f"version {version['version']} ({os.path.basename(version['manifest'])})"
        with operator_errors_fail():
            summary = incoming.publish(version, params["warehouse"], params["dataset"], run_id)
        if summary is None:  # recorded by an earlier attempt: no second publication, no event
            raise AirflowSkipException(f"version {version['version']} is already published")
        outlet_events[CURATED].extra = {k: summary[k] for k in ("location", "counts", "report", "profile")}
        return summary

    planned = plan()
    results = run_shard.expand_kwargs(shard_args(planned))
    results >> publish.expand(version=version_args(planned))


curate_incoming()

"""TaskFlow tasks shared by the curation DAGs (`curate`, `curate_incoming`).

Cheap to import at parse time: the task bodies import the runner only when they run.
"""
from __future__ import annotations

from airflow.sdk import get_current_context, task

from operators.policy import GPU_POOL, SHARD_TIMEOUT, operator_errors_fail


@task(map_index_template="{{ shard_label }}", pool=GPU_POOL, execution_timeout=SHARD_TIMEOUT,
      max_active_tis_per_dagrun=2)
def run_shard(out: str, shard: int, rows: list[int], version: str = "") -> dict:
    """One planned shard through every stage; its name in the UI becomes
    `[<version>] shard <n> rows <a>-<b>: <in> in, <accepted> accepted, rejected <stage:reason n>`."""
    from operators import curation_tasks

    context = get_current_context()
    prefix = f"{version} " if version else ""
    context["shard_label"] = prefix + curation_tasks.shard_label(shard, rows)
    with operator_errors_fail():
        result = curation_tasks.run_shard(out, shard)
    context["shard_label"] = prefix + curation_tasks.shard_label(shard, rows, result["funnel"])
    return result

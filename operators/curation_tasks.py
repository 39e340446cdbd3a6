"""What the `curate` DAG's tasks do, as plain functions (the DAG file stays thin).

Operators know the runner, not the stages' insides. Every task is an idempotent transaction
keyed by the dataset directory: a retried `run_shard` skips a committed shard, a retried
`plan` returns the same shards, and only paths and counts travel through XCom.
"""
from __future__ import annotations

import json
import logging
import os
import re
from collections import Counter
from pathlib import Path

PLAN_FILE = "_plan/plan.json"  # written by the runner's plan: manifest, resolved config, shards
RAY_CONN_ID = "alchemist_ray"  # Airflow connection naming the Ray head every shard task joins

log = logging.getLogger("alchemist.operators")


def dataset_dir(warehouse: str, dataset: str, run_id: str) -> str:
    """`<warehouse>/<dataset>/<run id>`: each DAG run writes its own dataset version."""
    safe_run = re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)
    return str(Path(warehouse).expanduser().resolve() / dataset / safe_run)


def plan(manifest: str, out: str, profile: str | None, config_path: str | None,
         shard_size: int = 0, input_roots: str | None = None) -> list[int]:
    """`input_roots`: the `alchemist_input_roots` Airflow Variable (JSON list or comma-separated
    folders) widening where manifests may point; None keeps the manifest's own folder tree."""
    from curation.config import load_config, set_input_roots
    from curation.profiles import build_stages
    from curation.runner import plan as plan_shards, preflight

    config = load_config(config_path or None, profile or None)
    if shard_size:
        config.shard_size = shard_size
    set_input_roots(config, input_roots)
    preflight(build_stages(config))  # a missing model fails here, once, not in every shard task
    return plan_shards(manifest, out, config)


def shard_rows(out: str, shards: list[int]) -> dict[int, tuple[int, int]]:
    """Each planned shard's manifest row range, first and last row inclusive (0-based)."""
    from curation.progress import planned_rows

    ranges, start = {}, 0
    for shard, n in sorted(planned_rows(out, shards).items()):
        ranges[shard] = (start, start + n - 1)
        start += n
    return ranges


def _saved_config(out: str):
    from curation.config import RunConfig, validate

    config = RunConfig(**json.loads((Path(out) / PLAN_FILE).read_text())["config"])
    validate(config)
    return config


def ray_address() -> str | None:
    """The Ray head from the `alchemist_ray` connection, else $ALCHEMIST_RAY_ADDRESS, else
    None (a local Ray per task: fine for `airflow dags test`, wasteful on a service)."""
    try:
        from airflow.sdk import BaseHook

        conn = BaseHook.get_connection(RAY_CONN_ID)
    except Exception:  # no such connection (or no Airflow context): the environment decides
        return os.environ.get("ALCHEMIST_RAY_ADDRESS") or None
    # host:port is a GCS address on the cluster's network; ray://host:port a Ray Client
    # address (the KubeRay head service, from outside the Ray cluster)
    return f"{conn.host}:{conn.port}" if conn.port else conn.host


def run_shard(out: str, shard: int) -> dict:
    from curation.runner import ensure_ray, run_shard as run_one

    ensure_ray(ray_address())
    result = run_one(out, shard, _saved_config(out))
    return {"shard": result.shard, "skipped": result.skipped, "counts": result.counts,
            "funnel": shard_funnel(out, shard)}


def shard_funnel(out: str, shard: int) -> dict:
    """Rows in, accepted clips and rejections by `stage:reason` of one committed shard."""
    import pyarrow.parquet as pq
    from curation.warehouse import part_name

    part = f"{part_name(shard)}.parquet"
    root = Path(out)
    rows_in = pq.read_metadata(root / "_plan" / part).num_rows
    accepted = pq.read_metadata(root / "clips" / part).num_rows if (root / "clips" / part).exists() else 0
    rejected: Counter = Counter()
    if (root / "rejections" / part).exists():
        table = pq.read_table(root / "rejections" / part, columns=["level", "stage", "reason"])
        rejected.update(f"{r['stage']}:{r['reason']}" for r in table.to_pylist() if r["level"] in ("input", "clip"))
    return {"rows_in": rows_in, "accepted": accepted, "rejected": dict(sorted(rejected.items()))}


def shard_label(shard: int, rows: tuple[int, int], funnel: dict | None = None) -> str:
    """The mapped task's name in the UI: shard, row range and, once done, its counts."""
    label = f"shard {shard} rows {rows[0]}-{rows[1]}"
    if funnel is None:
        return label
    rejected = ", ".join(f"{k} {n}" for k, n in funnel["rejected"].items()) or "none"
    return f"{label}: {funnel['rows_in']} in, {funnel['accepted']} accepted, rejected {rejected}"


def commit(out: str, shards: list[int]) -> dict:
    """Write `_SUCCESS` and the run report; the summary is the commit task's return value."""
    from curation import warehouse
    from curation.report import write_report
    from curation.runner import run_meta

    success = warehouse.commit(out, shards, run_meta(_saved_config(out)))
    report = write_report(out)
    ranges = shard_rows(out, shards)
    per_shard = {shard_label(s, ranges[s]): shard_funnel(out, s) for s in sorted(shards)}
    summary = {"location": out, "counts": success["counts"], "shards": len(success["shards"]),
               "profile": success["config"]["profile"], "code_version": success["code_version"],
               "report": report_url(report), "per_shard": per_shard}
    log.info("committed %s\n%s", out, json.dumps(summary, indent=2))
    return summary


def report_url(report: Path) -> str:
    """Where a person opens the report: under $ALCHEMIST_REPORT_URL (the service serves the
    warehouse there) when the report lies in $ALCHEMIST_WAREHOUSE, else a file URI."""
    base, warehouse = os.environ.get("ALCHEMIST_REPORT_URL"), os.environ.get("ALCHEMIST_WAREHOUSE")
    if base and warehouse:
        try:
            return base.rstrip("/") + "/" + report.resolve().relative_to(Path(warehouse).resolve()).as_posix()
        except ValueError:  # written outside the served warehouse (an explicit `out`)
            pass
    return report.resolve().as_uri()

"""What the `curate_incoming` DAG's tasks do: find manifests that have no published version,
plan each as its own dataset version, and publish each exactly once (curation.versions)."""
from __future__ import annotations

from datetime import datetime, timezone

from operators import curation_tasks


def plan(incoming: str, warehouse: str, dataset: str, profile: str, config_path: str,
         shard_size: int) -> dict:
    """Every new manifest planned under its version's directory; the flat list of shards."""
    from curation.errors import OperatorError
    from curation.versions import new_manifests

    if not incoming:
        raise OperatorError("curate_incoming needs a watched folder: set ALCHEMIST_INCOMING or the `incoming` param")
    versions, shards = [], []
    for version in new_manifests(incoming, warehouse, dataset):
        planned = curation_tasks.plan(version["manifest"], version["out"], profile, config_path, shard_size)
        rows = curation_tasks.shard_rows(version["out"], planned)
        versions.append({**version, "shards": planned})
        shards += [{"out": version["out"], "shard": s, "rows": rows[s], "version": version["version"]}
                   for s in planned]
    return {"versions": versions, "shards": shards}


def publish(version: dict, warehouse: str, dataset: str, run_id: str) -> dict | None:
    """Commit one version and record it in the warehouse; None if it was already recorded."""
    from curation import versions

    summary = curation_tasks.commit(version["out"], version["shards"])
    entry = {"manifest": version["manifest"], "location": version["out"], "counts": summary["counts"],
             "report": summary["report"], "run_id": run_id,
             "published_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    return {**summary, "version": version["version"]} if versions.record(warehouse, dataset, version["key"], entry) else None

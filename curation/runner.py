"""The pipeline runner: plan shards from a manifest, run each shard's stages, commit.

It knows Ray, not Airflow (the DAG and the CLI both call it), and it knows the stage contract,
not the stages' insides.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from curation import fingerprint, planning, warehouse
from curation.config import RunConfig
from curation.execute import Limits, execute_local, run_on_actors
from curation.profiles import build_stages
from curation.route import route
from curation.stage import Stage
from model import model_registry

log = logging.getLogger("alchemist.runner")
PUBLISH_TIMEOUT_S = 1800.0  # our choice: routing and writing one shard, generously
SHARDS_IN_FLIGHT = 2  # `alchemist curate` on Ray: one computing while one drains (our choice)


@dataclass
class ShardResult:
    shard: int
    skipped: bool  # already committed by an earlier run: not recomputed
    counts: dict
    seconds: float


def plan(manifest: str | Path, out: str | Path, config: RunConfig) -> list[int]:
    """Shards of the manifest under `<out>/_plan` (curation.planning: idempotent, refuses drift)."""
    return planning.plan(manifest, out, config, build_stages(config))


def preflight(stages: list[Stage]) -> None:
    """Fail fast, in the driver, on what would fail every row: a model that is not there.

    Every missing model of the run is listed at once, each with the setting that provides
    it; hub checks run concurrently, each bounded by model_registry.HUB_TIMEOUT_S."""
    needed = [(stage.name, setting, spec) for stage in stages
              for setting, spec in stage.models_needed().items()]
    with ThreadPoolExecutor(max(1, len(needed))) as pool:
        problems = [p for p in pool.map(_missing_model, needed) if p]
    if len(problems) == 1:
        raise model_registry.ModelUnavailable(problems[0])
    if problems:
        raise model_registry.ModelUnavailable(
            f"{len(problems)} models of this run are missing: " + " | ".join(problems))


def _missing_model(need: tuple[str, str, str]) -> str | None:
    stage, setting, spec = need
    if not spec:
        return (f"stage {stage!r} needs stages.{stage}.{setting}: a hub id, a local directory "
                f"or a package: spec")
    try:
        model_registry.resolve(spec, check_hub=True)
    except model_registry.ModelUnavailable as e:
        return f"stages.{stage}.{setting}: {e}"
    return None


def run_meta(config: RunConfig) -> dict:
    return {"config": config.to_dict(), "code_version": fingerprint.code_version(),
            "undesirable_filter": config.undesirable_filter}


def confined(config: RunConfig, manifest: Path) -> RunConfig:
    """`config` with ingest's input roots defaulting to the manifest's own folder tree (the
    folder itself for a video2dataset folder): sources elsewhere are never opened."""
    ingest = config.stages.get("ingest", {})
    if ingest.get("input_roots"):
        return config
    root = manifest if manifest.is_dir() else manifest.parent
    stages = {**config.stages, "ingest": {**ingest, "input_roots": [str(root)]}}
    return dataclasses.replace(config, stages=stages)


def _planned_manifest(out: Path) -> Path:
    return Path(planning.read_plan(out)["manifest"])


def limits(config: RunConfig) -> Limits:
    return Limits(row_timeout_s=config.row_timeout_s, max_row_crashes=config.max_row_crashes,
                  actor_idle_s=config.actor_idle_s)


def run_shard(out: str | Path, shard: int, config: RunConfig, use_ray: bool = True,
              turn: ShardTurn | None = None) -> ShardResult:
    """Run every stage over one planned shard and publish it; skip it if already committed.

    On Ray the stages run on warm actors and the shard is routed and published by a task on a
    worker, so the driver holds ObjectRefs, never the shard's PNG columns. `turn` (one job's
    shards in one process) starts the stages only once the previous shard is draining.
    """
    out, start = Path(out), time.monotonic()
    turn = turn or ShardTurn()
    try:
        done = out / "_done" / f"{warehouse.part_name(shard)}.json"
        if done.exists():
            return ShardResult(shard, True, warehouse.shard_counts(out, shard), 0.0)
        rows = pq.read_table(out / "_plan" / f"{warehouse.part_name(shard)}.parquet")
        stages = build_stages(confined(config, _planned_manifest(out)))
        preflight(stages)
        meta = run_meta(config)
        if use_ray:
            turn.after.wait()
            refs = run_on_actors(stages, rows, limits(config), turn.draining)
            counts = _publish_on_worker(out, shard, stages, meta, refs)
        else:
            counts = publish(out, shard, execute_local(stages, rows), stages, meta)
    finally:
        turn.draining.set()  # never hold up the next shard, whatever happened to this one
    log.info("shard %d committed: %s", shard, counts)
    return ShardResult(shard, False, counts, time.monotonic() - start)


def _started() -> threading.Event:
    event = threading.Event()
    event.set()
    return event


@dataclass
class ShardTurn:
    """When a shard of `alchemist curate` may start its stages: once the shard before it is
    draining (every batch handed to the stages before its last stage group, or ended), so
    the bottleneck stage serves one shard at a time and the earlier shard's tail and
    publishing overlap the next one's compute, instead of both shards' tails adding up at
    the end of the job."""

    after: threading.Event = field(default_factory=_started)
    draining: threading.Event = field(default_factory=threading.Event)


def publish(out: Path, shard: int, work: pa.Table, stages: list[Stage], meta: dict) -> dict:
    """Route a shard's final work table into the warehouse tables and publish them."""
    return warehouse.write_shard(out, shard, route(work, stages, meta), meta)


def _publish_refs(out: Path, shard: int, stages: list[Stage], meta: dict, *tables: pa.Table) -> dict:
    tables = [t for t in tables if t.num_rows]
    work = pa.concat_tables(tables, promote_options="default") if tables else None
    if work is None:
        raise RuntimeError(f"shard {shard} produced no rows at all")
    return publish(out, shard, work, stages, meta)


def _publish_on_worker(out: Path, shard: int, stages: list[Stage], meta: dict, refs: list) -> dict:
    import ray

    # No CPU asked: the warm stage actors may hold most of them, and this is mostly I/O.
    # No retry: a publish that died is redone by the shard's own retry, from the start.
    task = ray.remote(num_cpus=0, max_retries=0)(_publish_refs)
    try:
        return ray.get(task.remote(out, shard, stages, meta, *refs), timeout=PUBLISH_TIMEOUT_S)
    except ray.exceptions.RayTaskError as e:
        if isinstance(e.cause, warehouse.DatasetError):  # a full disk: its one line, not a remote traceback
            raise e.cause from None
        raise


def ensure_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Connect to a cluster (`address`, else $ALCHEMIST_RAY_ADDRESS) or start a local Ray
    once per process."""
    import os

    import ray

    if ray.is_initialized():
        return
    address = address or os.environ.get("ALCHEMIST_RAY_ADDRESS") or None
    kwargs = dict(include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    if address:
        ray.init(address=address, **kwargs)
    else:  # "local": never join another cluster found through /tmp/ray/ray_current_cluster
        ray.init(address="local", num_cpus=num_cpus, **kwargs)


def _run_shards(out: Path, shards: list[int], config: RunConfig, use_ray: bool) -> Iterator[ShardResult]:
    """Each shard's result as it ends. On Ray, SHARDS_IN_FLIGHT at once, each starting its
    stages when the one before is draining (ShardTurn), so the next shard's batches keep the
    stage actors busy while one drains its last stages and publishes; in-process (`--no-ray`,
    for debugging) one after another, in order."""
    if not use_ray:
        yield from (run_shard(out, shard, config, use_ray=False) for shard in shards)
        return
    turns = [ShardTurn()]
    for _ in shards[1:]:
        turns.append(ShardTurn(after=turns[-1].draining))
    with ThreadPoolExecutor(SHARDS_IN_FLIGHT) as pool:
        futures = [pool.submit(run_shard, out, shard, config, True, turn)
                   for shard, turn in zip(shards, turns)]
        try:
            yield from (future.result() for future in as_completed(futures))
        finally:  # on an error, start no further shard; the ones running end on their own
            for future in futures:
                future.cancel()


def curate(manifest: str | Path, out: str | Path, config: RunConfig,
           ray_address: str | None = None, use_ray: bool = True, progress: bool = False) -> dict:
    """Plan, run every shard, commit: the whole job without Airflow (`alchemist curate`).

    `out` is the dataset directory; `curation.planning.versioned_out` picks a new one for
    `--new-version`. `progress` shows shards done, rows/s and the ETA (curation.progress)."""
    preflight(build_stages(config))  # before planning: a bad config leaves no half-made dataset
    shards = plan(manifest, out, config)
    if use_ray:
        ensure_ray(ray_address)
    from contextlib import nullcontext

    from curation.progress import CurateProgress

    with CurateProgress(out, shards) if progress else nullcontext() as bar:
        last = time.monotonic()
        for result in _run_shards(out, shards, config, use_ray):
            log.info("shard %d: %s", result.shard, "skipped (committed)" if result.skipped else f"{result.seconds:.1f}s")
            if bar:  # shards overlap, so the time since the last one ended, not its own time
                bar.shard_done(result.shard, result.skipped, 0.0 if result.skipped else time.monotonic() - last)
            last = time.monotonic()
    return warehouse.commit(out, shards, run_meta(config))



"""Run a list of stages over one shard's rows: in-process, or on warm Ray stage actors.

On Ray every stage group (a model stage, or a run of light stages: curation.stage_pool) has
long-lived named actors that keep its models loaded across shards and shard tasks; this
module's driver loop sends each batch to a free actor of its stage's group, one stage per call,
and the batch's result (an ObjectRef) on to the next stage, so stages overlap and rows never
pass through the driver. Every call and every `ray.get` has a time
limit (`Limits`); a hung or crashed row becomes a rejection, never a stalled shard.
Rows rejected by an earlier stage travel on untouched, so the runner sees every row at the end.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from curation.stage import OK, REJECTED, Stage, output_schema
from curation.stage_pool import StageSetupError, first_line


def apply_stage(stage: Stage, batch: pa.Table) -> pa.Table:
    """Run `stage` on the batch's live rows; pass the others through with typed nulls."""
    schema = output_schema(batch.schema, stage)
    if "status" in batch.column_names:
        live_mask = pc.equal(batch["status"].fill_null(OK), OK)
        live, dead = batch.filter(live_mask), batch.filter(pc.invert(live_mask))
    else:
        live, dead = batch, batch.slice(0, 0)
    parts = [_conform(stage(live), schema)] if live.num_rows else []
    if dead.num_rows:
        parts.append(_conform(dead, schema))
    out = pa.concat_tables(parts) if parts else schema.empty_table()
    return _stamp(out, stage.name)


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    cols = [table.column(f.name).cast(f.type) if f.name in table.column_names
            else pa.nulls(table.num_rows, f.type) for f in schema]
    return pa.Table.from_arrays(cols, schema=schema)


def _stamp(table: pa.Table, stage_name: str) -> pa.Table:
    """Record which stage rejected a row and which stage wrote each note."""
    rows_rejected_here = pc.and_(pc.equal(table["status"], REJECTED), pc.is_null(table["rejected_by"]))
    rejected_by = pc.if_else(rows_rejected_here, pa.scalar(stage_name), table["rejected_by"])
    notes = [[{**n, "stage": n["stage"] or stage_name} for n in ns] if ns else ns
             for ns in table["notes"].to_pylist()]
    table = table.set_column(table.schema.get_field_index("rejected_by"), "rejected_by", rejected_by)
    return table.set_column(table.schema.get_field_index("notes"), "notes",
                            pa.array(notes, table.schema.field("notes").type))


def execute_local(stages: list[Stage], rows: pa.Table) -> pa.Table:
    """The same pipeline in-process, without Ray (for debugging and unit tests of stages)."""
    for stage in stages:
        try:
            stage.ensure_setup()
        except Exception as e:  # the same one line as a failed Ray actor, not a traceback
            raise StageSetupError(setup_line(stage, e)) from e
        rows = apply_stage(stage, rows)
    return rows


def setup_line(stage: Stage, error: Exception) -> str:
    """The one line that ends a run whose stage could not set up (in-process or in an actor)."""
    return f"stage {stage.name!r} failed in setup(): {type(error).__name__}: {first_line(error)}"


def cpu_requests(stages: list, cluster_cpus: float) -> list[float]:
    """Per-actor CPU requests of stages (or stage groups), scaled down when they together ask
    for more than the cluster has, so every one keeps an actor alive and none starves the
    others."""
    asked = [s.resources.cpus * s.resources.actors for s in stages]
    budget = 0.9 * cluster_cpus  # leave room for Ray Data's own read and driver tasks
    scale = min(1.0, budget / sum(asked)) if sum(asked) else 1.0
    return [s.resources.cpus * scale for s in stages]




# --- On warm Ray actors, with bounds ----------------------------------------------------------


# Rejections the runner writes for any stage, as `<stage>_<suffix>` (README "Rejection reasons").
RUNNER_REASONS = {
    "timeout": "the row found no result within row_timeout_s on this stage (a hung decode, a "
               "pathological input); its worker was killed and replaced, the shard went on",
    "crashed": "the row's worker process died (segfault, out of memory) max_row_crashes times "
               "while running this stage on it alone",
}


@dataclass(frozen=True)
class Limits:
    """Bounds on one shard's run (RunConfig carries the settings; defaults are our choices)."""

    row_timeout_s: float = 300.0  # per row and stage; a batch gets this times its rows
    max_row_crashes: int = 2  # a row whose worker dies this often is rejected `<stage>_crashed`
    actor_idle_s: float = 600.0  # a warm stage actor nobody calls this long ends itself
    setup_timeout_s: float = 1800.0  # one stage actor's setup() (model download and load)
    get_timeout_s: float = 120.0  # any other ray.get (row counts, one batch to split)


@dataclass
class _Work:
    """A batch (or one row retried alone) waiting for, or running on, one stage."""

    stage: int  # index into the stage list
    ref: Any  # ObjectRef of the input table: rows stay in the object store, not the driver
    rows: int
    order: tuple  # sorts outputs back into input order
    alone: bool = False  # one row, retried on its own after its batch failed
    crashes: int = 0  # how often a worker died with this row in its call


@dataclass
class _Call:
    work: _Work
    slot: int
    table_ref: Any
    count_ref: Any
    deadline: float


def execute_ray(stages: list[Stage], rows: pa.Table, limits: Limits = Limits()) -> pa.Table:
    """`run_on_actors` with the result fetched into this process (tests, small shards)."""
    import ray

    refs = run_on_actors(stages, rows, limits)
    tables = [t for t in ray.get(refs, timeout=limits.get_timeout_s) if t.num_rows]
    return pa.concat_tables(tables, promote_options="default") if tables else rows.slice(0, 0)


def run_on_actors(stages: list[Stage], rows: pa.Table, limits: Limits = Limits(),
                  draining: threading.Event | None = None) -> list:
    """Every stage over the rows on warm stage actors; ObjectRefs of the final tables, in
    input order. Binary columns never pass through this process. `draining` is set once every
    batch has been handed to the stages before the last stage group (or the run has ended),
    the moment for the next shard of the same job to start.

    Each call gets `row_timeout_s` per input row. When it runs out, the actor is killed and
    replaced and the batch's rows are retried one at a time; a row that runs out alone is
    rejected `<stage>_timeout`. When a worker dies (a segfault, OOM), the same happens and a
    row that took its worker down `max_row_crashes` times is rejected `<stage>_crashed`.
    """
    import ray

    from curation.stage_pool import StagePool, stage_groups

    groups = stage_groups(stages)
    cpus = cpu_requests(groups, ray.cluster_resources().get("CPU", 1.0))
    pools = [StagePool(g, c, limits.actor_idle_s, limits.setup_timeout_s)
             for g, c in zip(groups, cpus)]
    for pool in pools:  # every group's setup() at once, while the first batches run
        pool.start()
    run = _ShardRun(stages, pools, limits, draining or threading.Event())
    size = first_batch_rows(groups) or max(1, rows.num_rows)
    for n, start in enumerate(range(0, rows.num_rows, size)):
        batch = rows.slice(start, size)
        run.queue(_Work(0, ray.put(batch), batch.num_rows, (n,)))
    return run.until_done()


def first_batch_rows(groups: list) -> int:
    """Rows per batch a shard is cut into: the first stage's batch size, but no more than the
    next group's (0 without stages). So each call of the stage after ingest (the shot
    detector) is one batch of its own, and the shard's last batch, which every later stage
    still has to run once that stage is done (the job's tail), is no larger than it must be."""
    sizes = [g.stages[0].resources.batch_size for g in groups[:2]]
    return max(1, min(sizes)) if sizes else 0


class _ShardRun:
    """The driver's loop: feed free actor slots, wait for the first result or deadline.

    An actor runs one call at a time, so a call's deadline is its own time: a grouped actor
    takes the work of its latest stage first, so rows drain towards publishing."""

    def __init__(self, stages: list[Stage], pools: list, limits: Limits, draining: threading.Event):
        self.stages, self.pools, self.limits, self.draining = stages, pools, limits, draining
        self.pool_of = [p for p in pools for _ in p.group.stages]  # stage index -> its pool
        self.waiting: list[list[_Work]] = [[] for _ in stages]
        self.running: dict[tuple[int, int], _Call] = {}  # (pool, slot) -> call
        self.done: list[tuple[tuple, Any]] = []

    def queue(self, work: _Work) -> None:
        if work.stage == len(self.stages):
            self.done.append((work.order, work.ref))
        else:
            self.waiting[work.stage].append(work)

    def until_done(self) -> list:
        try:
            return self._loop()
        finally:
            self.draining.set()

    def _loop(self) -> list:
        import ray

        while any(self.waiting) or self.running:
            if self._draining():
                self.draining.set()
            self._dispatch()
            by_count = {c.count_ref: key for key, c in self.running.items()}
            held_up = [pool for pool in self.pools if self._next_work(pool, take=False)]
            setups = [ref for pool in held_up for ref in pool.setup_refs()]
            deadline = min([c.deadline for c in self.running.values()]
                           + [pool.setup_deadline() for pool in held_up])
            wait_s = max(0.0, deadline - time.monotonic())
            # Also wakes when a stage with waiting work has an actor set up (or failed).
            ready, _ = ray.wait([*by_count, *setups], num_returns=1, timeout=wait_s)
            ready = [ref for ref in ready if ref in by_count]
            for ref in ready:
                self._finish(by_count[ref])
            now = time.monotonic()
            for key in [k for k, c in self.running.items() if c.deadline <= now]:
                self._timed_out(key)
        return [ref for _, ref in sorted(self.done, key=lambda d: d[0])]

    def _dispatch(self) -> None:
        for p, pool in enumerate(self.pools):
            for slot in range(len(pool.actors)):
                if (p, slot) in self.running or not self._next_work(pool, take=False):
                    continue
                actor = pool.actor(slot, wait=False)
                if actor is None:  # still in setup()
                    continue
                work = self._next_work(pool)
                member = work.stage - pool.group.first
                table_ref, count_ref = actor.run.options(num_returns=2).remote(work.ref, member)
                deadline = time.monotonic() + self.limits.row_timeout_s * max(1, work.rows)
                self.running[(p, slot)] = _Call(work, slot, table_ref, count_ref, deadline)

    def _draining(self) -> bool:
        """Every batch has been handed to the stages before the last group (the last calls
        may still run): what is left is this shard's tail."""
        return not any(self.waiting[:self.pools[-1].group.first])

    def _next_work(self, pool, take: bool = True) -> _Work | None:
        """The next work for `pool`'s actors: its latest stage's first; popped if `take`."""
        first = pool.group.first
        for i in reversed(range(first, first + len(pool.group.stages))):
            if self.waiting[i]:
                return self.waiting[i].pop(0) if take else self.waiting[i][0]
        return None

    def _finish(self, key: tuple[int, int]) -> None:
        import ray

        call = self.running.pop(key)
        work = call.work
        try:
            rows = ray.get(call.count_ref, timeout=self.limits.get_timeout_s)
        except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as e:
            self.pool_of[work.stage].replace(call.slot)
            self._crashed(work, e)
            return
        except ray.exceptions.RayTaskError as e:  # the adapter raised: a bug, kept as data
            detail = first_line(e)
            self._retry_alone(work, lambda w: self._reject(
                w, f"{self.stages[w.stage].name}_error", detail))
            return
        self.queue(_Work(work.stage + 1, call.table_ref, rows, work.order))

    def _timed_out(self, key: tuple[int, int]) -> None:
        call = self.running.pop(key)
        self.pool_of[call.work.stage].replace(call.slot)
        limit = self.limits.row_timeout_s
        self._retry_alone(call.work, lambda w: self._reject(
            w, f"{self.stages[w.stage].name}_timeout",
            f"no result within {limit:g} s for this row; its worker was replaced"))

    def _crashed(self, work: _Work, error: Exception) -> None:
        for w in [work] if work.alone else self._split(work):
            w.crashes += 1
            if w.crashes >= self.limits.max_row_crashes:
                self._reject(w, f"{self.stages[w.stage].name}_crashed",
                             f"its worker died {w.crashes} times ({first_line(error)})")
            else:
                self.waiting[w.stage].append(w)

    def _retry_alone(self, work: _Work, verdict) -> None:
        """A failed batch: each of its rows again on its own; a failed row: `verdict`."""
        if work.alone:
            verdict(work)
        else:
            self.waiting[work.stage].extend(self._split(work))

    def _split(self, work: _Work) -> list[_Work]:
        import ray

        batch = ray.get(work.ref, timeout=self.limits.get_timeout_s)  # one batch, bounded
        return [_Work(work.stage, ray.put(batch.slice(i, 1)), 1, (*work.order, i), True,
                      work.crashes) for i in range(batch.num_rows)]

    def _reject(self, work: _Work, reason: str, detail: str) -> None:
        import ray

        stage = self.stages[work.stage]
        rows = ray.get(work.ref, timeout=self.limits.get_timeout_s)  # one row
        table = _stamp(_conform(stage.reject_rows(rows, reason, detail),
                                output_schema(rows.schema, stage)), stage.name)
        self.queue(_Work(len(self.stages), ray.put(table), table.num_rows, work.order))
        # Later stages pass rejected rows through untouched, so it can skip them.


"""Run a list of stages over one shard's rows with Ray Data (HOUSE_STYLE "Ray Data idiom").

Each stage becomes a `map_batches` over an actor pool, so `setup()` (model loading) happens
once per actor, and each actor asks Ray for the stage's declared cpus/gpus. Rows rejected by
an earlier stage travel on untouched, so the runner sees every row at the end.
"""
from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.compute as pc

from curation.stage import OK, REJECTED, Stage, output_schema


class StageActor:
    """The callable class Ray Data instantiates once per actor for one stage."""

    def __init__(self, stage: Stage):
        self.stage = stage
        self.stage.setup()

    def __call__(self, batch: pa.Table) -> pa.Table:
        return apply_stage(self.stage, batch)


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
        stage.setup()
        rows = apply_stage(stage, rows)
    return rows


def cpu_requests(stages: list[Stage], cluster_cpus: float) -> list[float]:
    """Per-actor CPU requests, scaled down when the stages together ask for more than the
    cluster has, so every stage keeps an actor alive and none starves the others."""
    asked = [s.resources.cpus * s.resources.actors for s in stages]
    budget = 0.9 * cluster_cpus  # leave room for Ray Data's own read and driver tasks
    scale = min(1.0, budget / sum(asked)) if sum(asked) else 1.0
    return [s.resources.cpus * scale for s in stages]


def execute_ray(stages: list[Stage], rows: pa.Table) -> pa.Table:
    import ray
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True
    ctx.enable_progress_bars = bool(os.environ.get("ALCHEMIST_PROGRESS"))
    ds = ray.data.from_arrow(rows)
    cpus = cpu_requests(stages, ray.cluster_resources().get("CPU", 1.0))
    for stage, num_cpus in zip(stages, cpus):
        r = stage.resources
        ds = ds.map_batches(
            StageActor,
            fn_constructor_kwargs={"stage": stage},
            batch_format="pyarrow",
            batch_size=r.batch_size,
            compute=ray.data.ActorPoolStrategy(size=r.actors),
            num_cpus=num_cpus,
            num_gpus=r.gpus or None,
            udf_modifying_row_count=True,  # ingest and split-mode shots turn one row into many
        )
    blocks = [b for b in ray.get(ds.to_arrow_refs()) if b.num_rows]
    return pa.concat_tables(blocks, promote_options="default") if blocks else rows.slice(0, 0)

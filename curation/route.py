"""Turn a shard's final work table into the warehouse tables (the runner's job, not a stage's).

Contract (README "Tables"): each input row yields candidate clips or exactly one input-level
rejection; each candidate clip is in exactly one of `clips` or a clip-level rejection; child
tables hold only accepted clips; notes become entity/background-level rejections.
"""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from curation.keys import child_key, frame_part
from curation.stage import OK, Stage
from warehouse_schemas import registry


def route(work: pa.Table, stages: list[Stage], run_meta: dict) -> dict[str, pa.Table]:
    accepted = work.filter(pc.equal(work["status"], OK))
    candidates = _candidates(work, stages)
    tables = {
        "videos": _videos(candidates),
        "clips": _clips(accepted, run_meta),
        "clip_scores": _scores(candidates, stages),
        "rejections": pa.Table.from_pylist(_rejection_rows(work, stages), registry.schema("rejections")),
    }
    for name in registry.CHILD_TABLES:
        tables[name] = _explode(accepted, name)
    for name in registry.CANDIDATE_TABLES:
        tables[name] = _explode(candidates, name)
    return tables


def _candidates(work: pa.Table, stages: list[Stage]) -> pa.Table:
    """Rows that became candidate clips: everything not rejected at the input level."""
    input_stages = [s.name for s in stages if s.level == "input"]
    rejected_by = work["rejected_by"].fill_null("")
    return work.filter(pc.invert(pc.is_in(rejected_by, pa.array(input_stages, pa.string()))))


def _videos(candidates: pa.Table) -> pa.Table:
    rows, seen = [], set()
    for row in candidates.select([c for c in registry.schema("videos").names
                                  if c in candidates.column_names]).to_pylist():
        if row["video_id"] not in seen:
            seen.add(row["video_id"])
            rows.append(row)
    return pa.Table.from_pylist(rows, registry.schema("videos"))


def _clips(accepted: pa.Table, run_meta: dict) -> pa.Table:
    table = accepted.select([c for c in registry.schema("clips").names if c in accepted.column_names])
    if "undesirable_filter" not in table.column_names:
        table = table.append_column("undesirable_filter", pa.array(
            [run_meta.get("undesirable_filter")] * table.num_rows, pa.string()))
    return table


def _scores(candidates: pa.Table, stages: list[Stage]) -> pa.Table:
    rows = []
    keys = candidates["clip_key"].to_pylist()
    for stage in stages:
        for name in stage.scores:
            if name not in candidates.column_names:
                continue
            for key, value in zip(keys, candidates[name].to_pylist()):
                if value is not None:
                    rows.append({"clip_key": key, "stage": stage.name, "name": name, "value": float(value)})
    return pa.Table.from_pylist(rows, registry.schema("clip_scores"))


def _rejection_rows(work: pa.Table, stages: list[Stage]) -> list[dict]:
    by_name = {s.name: s for s in stages}
    payloads = [s.payload_column for s in stages if s.payload_column in work.column_names]
    cols = ["input_key", "clip_key", "status", "reason", "detail", "rejected_by", "notes", *payloads]
    rows = []
    for row in work.select(cols).to_pylist():
        rows += [_note_row(row, n) for n in row["notes"] or []]
        if row["status"] != OK:
            rows.append(_rejected_row(row, by_name[row["rejected_by"]]))
    return rows


def _rejected_row(row: dict, stage: Stage) -> dict:
    """An input- or clip-level rejection, keyed by what was rejected."""
    is_input = stage.level == "input"
    return dict(key=row["input_key"] if is_input else row["clip_key"], input_key=row["input_key"],
                clip_key=None if is_input else row["clip_key"], level=stage.level,
                stage=stage.name, reason=row["reason"], detail=row["detail"], entity=None,
                frame_index=None, payload=row.get(stage.payload_column) if stage.payload_column else None)


def _note_row(row: dict, n: dict) -> dict:
    """An entity- or background-level rejection, keyed below its clip."""
    clip = row["clip_key"]
    parts = [p for p in (n["entity"], frame_part(n["frame_index"]) if n["frame_index"] else None) if p]
    return dict(key=child_key(clip, *parts) if parts else child_key(clip, n["level"]),
                input_key=row["input_key"], clip_key=clip, level=n["level"],
                stage=n["stage"] or row["rejected_by"] or "", reason=n["reason"], detail=n["detail"],
                entity=n["entity"], frame_index=n["frame_index"], payload=None)


def _explode(rows: pa.Table, name: str) -> pa.Table:
    """The list<struct> column `name` of the work table as rows of the table `name`."""
    schema = registry.schema(name)
    if name not in rows.column_names:
        return schema.empty_table()
    flat = pc.list_flatten(rows[name])
    if len(flat) == 0:
        return schema.empty_table()
    chunks = flat.chunks if isinstance(flat, pa.ChunkedArray) else [flat]
    return pa.Table.from_batches([pa.RecordBatch.from_struct_array(c) for c in chunks if len(c)])

"""The stage contract: a dataclass with declared resources, `setup()` once per actor, and a
pure per-batch call on pyarrow tables (see HOUSE_STYLE.md "Stages").

A stage never drops or raises on a bad row. It returns every row it was given (or, for a
splitting stage, the rows each one became) with three outcome columns:
  status  "ok" or "rejected"
  reason  machine-readable code when rejected (e.g. "shot_boundary")
  detail  one human-readable line
plus `notes`: entity- or background-level rejections on a row that may still pass.
The runner, not the stage, routes rejected rows to `rejections` and scores to `clip_scores`.
"""
from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pyarrow as pa

OK, REJECTED = "ok", "rejected"

NOTE = pa.struct(
    [
        pa.field("level", pa.string()),  # "entity" or "background"
        pa.field("reason", pa.string()),
        pa.field("detail", pa.string()),
        pa.field("entity", pa.string()),
        pa.field("frame_index", pa.int8()),
        pa.field("stage", pa.string()),  # stamped by the runner's adapter
    ]
)
OUTCOME_FIELDS = [
    pa.field("status", pa.string()),
    pa.field("reason", pa.string()),
    pa.field("detail", pa.string()),
    pa.field("rejected_by", pa.string()),  # stage name; set by the runner's adapter
    pa.field("notes", pa.list_(NOTE)),
]


@dataclass(frozen=True)
class Resources:
    """What one actor of a stage asks Ray for.

    Fractional CPUs let every stage keep an actor alive on a 2-core machine; on a cluster
    the config raises them.
    """

    cpus: float = 0.25
    gpus: float = 0.0
    batch_size: int = 4  # rows per call
    actors: int = 1  # actor-pool size


@dataclass
class Outcome:
    """What a stage decided for one output row."""

    values: dict[str, Any] = field(default_factory=dict)  # columns the stage writes
    reason: str | None = None  # None: the row passes
    detail: str = ""
    notes: list[dict] = field(default_factory=list)  # see NOTE

    @staticmethod
    def reject(reason: str, detail: str = "", **values: Any) -> "Outcome":
        return Outcome(values=values, reason=reason, detail=detail)


def note(level: str, reason: str, detail: str = "", entity: str | None = None,
         frame_index: int | None = None) -> dict:
    return dict(level=level, reason=reason, detail=detail, entity=entity, frame_index=frame_index,
                stage=None)


@dataclass
class Stage:
    """Base class. Subclasses are @dataclass with typed, commented settings.

    Override `process(row) -> Outcome | list[Outcome]` for row-wise work, or `__call__` for
    real batching (GPU models). `writes` declares the columns added to the work table, so
    rows the stage never saw (already rejected) get typed nulls; `scores` names the written
    columns that are copied to `clip_scores`.
    """

    name: ClassVar[str] = "stage"
    level: ClassVar[str] = "clip"  # rejection level of rows this stage rejects
    reads: ClassVar[tuple[str, ...]] = ()
    writes: ClassVar[tuple[pa.Field, ...]] = ()
    scores: ClassVar[tuple[str, ...]] = ()
    payload_column: ClassVar[str | None] = None  # copied to `rejections.payload` when it rejects

    resources: Resources = field(default_factory=Resources)

    def setup(self) -> None:
        """Load models; called once per actor before the first batch."""

    def models_needed(self) -> dict[str, str]:
        """Setting name -> model spec that setup() will load with these settings. The runner
        resolves them in the driver first, so a missing model is one error line, not a crash
        in every actor."""
        return {}

    def process(self, row: dict) -> Outcome | list[Outcome]:
        raise NotImplementedError

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = []
        for row in batch.to_pylist():
            for outcome in self._safe_process(row):
                rows.append(merge_outcome(row, outcome))
        return to_table(rows, output_schema(batch.schema, self))

    def reject_rows(self, batch: pa.Table, reason: str, detail: str) -> pa.Table:
        """Every row of `batch` rejected with `reason`, in this stage's output schema: the
        runner's verdict on rows the stage could not finish (a time limit, a dead worker)."""
        rows = [merge_outcome(row, Outcome.reject(reason, detail)) for row in batch.to_pylist()]
        return to_table(rows, output_schema(batch.schema, self))

    def _safe_process(self, row: dict) -> list[Outcome]:
        try:
            result = self.process(row)
        except Exception as e:  # errors are data: one bad clip never fails the batch
            last = traceback.extract_tb(e.__traceback__)[-1]
            where = f"{last.filename.rsplit('/', 1)[-1]}:{last.lineno}"
            return [Outcome.reject(f"{self.name}_error", f"{type(e).__name__}: {e} ({where})")]
        return result if isinstance(result, list) else [result]


def merge_outcome(row: dict, outcome: Outcome) -> dict:
    out = {**row, **outcome.values}
    out["status"] = OK if outcome.reason is None else REJECTED
    out["reason"] = outcome.reason
    out["detail"] = outcome.detail or None
    out["notes"] = list(row.get("notes") or []) + outcome.notes
    return out


def output_schema(input_schema: pa.Schema, stage: Stage) -> pa.Schema:
    """Input columns (a redeclared one takes the stage's type), then new declared columns,
    then the outcome columns."""
    declared = {f.name: f for f in (*stage.writes, *OUTCOME_FIELDS)}
    fields = [declared.pop(f.name, f) for f in input_schema]
    return pa.schema(fields + list(declared.values()))


def to_table(rows: list[dict], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=schema)

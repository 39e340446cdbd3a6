"""The stage contract: a dataclass with declared resources, `setup()` once per actor, a
per-batch `process_batch` that scores and a `decide` that applies thresholds (see
curation/stages/README.md and docs/architecture.md, "Stage contract").

A stage never drops or raises on a bad row. It returns every row it was given (or, for a
splitting stage, the rows each one became) with three outcome columns:
  status  "ok" or "rejected"
  reason  machine-readable code when rejected (e.g. "shot_boundary")
  detail  one human-readable line
plus `notes`: entity- or background-level rejections on a row that may still pass.
The runner, not the stage, routes rejected rows to `rejections` and scores to `clip_scores`.
"""
from __future__ import annotations

import functools
import traceback
from dataclasses import dataclass, field
from typing import Any, ClassVar, Union

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


# What `process_batch` returns for one input row (see Stage).
RowResult = Union[dict, Outcome, list, BaseException]


@dataclass
class Stage:
    """Base class. Subclasses are @dataclass with typed, commented settings.

    A stage implements
      setup()                  load models; once per actor, before the first batch
      process_batch(rows)      the per-batch work: one result per input row, in order:
                                 a scores dict      -> passed to decide()
                                 an Outcome         -> the row's outcome as is (a row that
                                                       could not be scored, e.g. undecodable)
                                 a list of either   -> a splitting stage: one output row each
                                 an exception       -> `<name>_error` with its file:line
      decide(scores)           the cheap, deterministic threshold step on stored scores; its
                               settings are the stage's own fields, so `alchemist retune`
                               re-runs it from `clip_scores` with other settings
    and never overrides `__call__`, which owns the batch loop, lazy setup and error capture.
    `reads` are checked against earlier stages' `writes` when the stage list is built;
    `writes` declares the columns added to the work table, so rows the stage never saw get
    typed nulls; `scores` names the written columns that are copied to `clip_scores`.
    """

    name: ClassVar[str] = "stage"
    level: ClassVar[str] = "clip"  # rejection level of rows this stage rejects
    reads: ClassVar[tuple[str, ...]] = ()
    writes: ClassVar[tuple[pa.Field, ...]] = ()
    scores: ClassVar[tuple[str, ...]] = ()
    payload_column: ClassVar[str | None] = None  # copied to `rejections.payload` when it rejects
    keeps_input_columns: ClassVar[bool] = True  # False: output rows hold only `writes` (ingest)
    # True when decide() needs nothing but the `scores` stored in clip_scores, so
    # `alchemist retune` can re-run it on a finished dataset.
    retunable: ClassVar[bool] = False

    resources: Resources = field(default_factory=Resources)

    def setup(self) -> None:
        """Load models; called once per actor before the first batch."""

    def models_needed(self) -> dict[str, str]:
        """Setting name -> model spec that setup() will load with these settings. The runner
        resolves them in the driver first, so a missing model is one error line, not a crash
        in every actor."""
        return {}

    def process_batch(self, rows: list[dict]) -> list[RowResult]:
        raise NotImplementedError

    def decide(self, scores: dict) -> Outcome:
        """Default: no threshold, the row passes with its scores as written values."""
        return Outcome(values=scores)

    def row_values(self, row: dict) -> dict:
        """Values every output row of `row` carries, even an error row (ingest: its keys)."""
        return {}

    def reject_rows(self, batch: pa.Table, reason: str, detail: str) -> pa.Table:
        """Every row of `batch` rejected with `reason`, in this stage's output schema: the
        runner's verdict on rows the stage could not finish (a time limit, a dead worker)."""
        rows = [self._merge(row, Outcome.reject(reason, detail)) for row in batch.to_pylist()]
        return to_table(rows, self._output_schema(batch.schema))

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A stage's own setup() marks it ready however it is called (actor, test, tool),
        so `__call__` never loads its models a second time."""
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("setup")
        if own is not None and not getattr(own, "marks_ready", False):
            @functools.wraps(own)
            def setup(self: Stage) -> None:
                own(self)
                self._ready = True

            setup.marks_ready = True  # type: ignore[attr-defined]
            cls.setup = setup  # type: ignore[method-assign]

    def ensure_setup(self) -> None:
        """setup() once per stage object (an actor's, or the local executor's)."""
        if not getattr(self, "_ready", False):
            self.setup()
            self._ready = True

    def __call__(self, batch: pa.Table) -> pa.Table:
        self.ensure_setup()
        rows = batch.to_pylist()
        out = []
        for row, result in zip(rows, self._results(rows)):
            out.extend(self._merge(row, outcome) for outcome in self._outcomes(result))
        return to_table(out, self._output_schema(batch.schema))

    def _results(self, rows: list[dict]) -> list[RowResult]:
        """One result per row. When the batch call raises, each row is re-run alone, so the
        exception lands on the row that caused it and the others are still processed."""
        if not rows:
            return []
        try:
            results = self.process_batch(rows)
        except Exception as e:  # errors are data: one bad clip never fails the batch
            if len(rows) == 1:
                return [e]
            return [self._results([row])[0] for row in rows]
        if len(results) != len(rows):
            raise RuntimeError(f"stage {self.name}: process_batch returned {len(results)} "
                               f"results for {len(rows)} rows")
        return results

    def _outcomes(self, result: RowResult) -> list[Outcome]:
        """The row's outcomes; the per-row place where scores meet decide()."""
        if isinstance(result, list):
            return [o for item in result for o in self._outcomes(item)]
        if isinstance(result, Outcome):
            return [result]
        if not isinstance(result, BaseException):
            try:
                return [self.decide(result)]
            except Exception as e:  # a decision on odd scores is still one row's problem
                result = e
        return [Outcome.reject(f"{self.name}_error", error_detail(result))]

    def _output_schema(self, input_schema: pa.Schema) -> pa.Schema:
        return output_schema(input_schema if self.keeps_input_columns else pa.schema([]), self)

    def _merge(self, row: dict, outcome: Outcome) -> dict:
        if self.keeps_input_columns:
            return merge_outcome({**row, **self.row_values(row)}, outcome)
        return merge_outcome(self.row_values(row), outcome)


def error_detail(e: BaseException) -> str:
    """`Type: message (file.py:line)`, the line being where the exception was raised."""
    frames = traceback.extract_tb(e.__traceback__) if e.__traceback__ else []
    where = f" ({frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno})" if frames else ""
    return f"{type(e).__name__}: {e}{where}"


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

"""Plan a dataset: split the manifest into shards, mark duplicate inputs, store the fingerprint.

`_plan/part-N.parquet` holds the manifest rows of shard N; `_plan/plan.json` the shard list,
the config and the dataset's fingerprint (curation.fingerprint). Planning is idempotent: the
same manifest, code and settings return the stored shards. Anything else is re-planned from
scratch while no shard is committed, and refused (naming what changed) once one is: a
dataset never mixes rows computed two ways. `--new-version` sends such a run to a new
dataset directory instead (`versioned_out`).

Duplicates are found over the whole streamed manifest with DuckDB (it spills to disk, so a
Panda-70M-sized manifest never has to fit in memory): the first row with an input key is
kept, every later one is marked `duplicate_input`, which ingest turns into its rejection.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from curation import fingerprint, keys, warehouse
from curation.config import ConfigError, RunConfig
from curation.manifest import iter_manifest_batches
from curation.stage import Stage

PLAN_FILE = "plan.json"
_KEY_COLUMNS = ["input_row", "id", "video", "start", "end", "problem"]
_KEYS_PER_INSERT = 65536  # our choice: few, large inserts into DuckDB
_KEYS_MEMORY = "1GB"  # our choice: about 10M keys in memory before DuckDB spills to disk
_SHOWN_CHANGES = 5


def read_plan(out: str | Path) -> dict | None:
    path = Path(out) / "_plan" / PLAN_FILE
    return json.loads(path.read_text()) if path.exists() else None


def plan(manifest: str | Path, out: str | Path, config: RunConfig, stages: list[Stage]) -> list[int]:
    """Shards of `shard_size` manifest rows under `<out>/_plan`; idempotent (see module doc)."""
    out = Path(out)
    wanted = fingerprint.of_run(manifest, config, stages)
    changes = _changes(out, wanted)
    if not changes:
        return read_plan(out)["shards"]
    if warehouse.committed_shards(out):
        shown = "; ".join(changes[:_SHOWN_CHANGES]) + (" ..." if len(changes) > _SHOWN_CHANGES else "")
        raise ConfigError(f"{out} holds shards computed from other inputs ({shown}); resume with the "
                          f"same manifest, code and settings, or pass --new-version to start a new "
                          f"dataset version")
    plan_dir = out / "_plan"
    shutil.rmtree(plan_dir, ignore_errors=True)  # nothing committed: the old plan goes entirely
    plan_dir.mkdir(parents=True)
    with warehouse.disk_errors(out):
        shards = _write_parts(manifest, plan_dir, config.shard_size)
        record = {"manifest": str(Path(manifest).resolve()), "config": config.to_dict(),
                  "fingerprint": wanted, "shards": shards}
        warehouse.write_durable(plan_dir / PLAN_FILE, json.dumps(record, indent=1).encode())
    return shards


def _changes(out: Path, wanted: dict) -> list[str]:
    planned = read_plan(out)
    if planned is None:
        return ["no plan"]
    if "fingerprint" not in planned:
        return ["the plan predates dataset fingerprints"]
    return fingerprint.drift(planned["fingerprint"], wanted)


def versioned_out(manifest: str | Path, out: str | Path, config: RunConfig, stages: list[Stage]) -> Path:
    """`out` if it is new or holds this very dataset, else the first `<out>-vN` that is."""
    out = Path(out)
    wanted = fingerprint.of_run(manifest, config, stages)
    candidate, n = out, 1
    while True:
        if not warehouse.committed_shards(candidate) or not _changes(candidate, wanted):
            return candidate
        n += 1
        candidate = out.with_name(f"{out.name}-v{n}")


# --- Shards and duplicates -------------------------------------------------------------------


def _write_parts(manifest: str | Path, plan_dir: Path, shard_size: int) -> list[int]:
    import duckdb

    spill = plan_dir / "keys.tmp"  # DuckDB spills the key table here once it outgrows memory_limit
    con = duckdb.connect(":memory:", config={"temp_directory": str(spill), "memory_limit": _KEYS_MEMORY})
    try:
        con.execute("CREATE TABLE keys (input_key VARCHAR, input_row BIGINT, shard INTEGER)")
        pending: list[pa.Table] = []
        shards = []
        for shard, batch in enumerate(iter_manifest_batches(manifest, shard_size)):
            _write_part(pa.Table.from_batches([batch]), plan_dir, shard)
            pending.append(_keys_of(batch, shard))
            if sum(t.num_rows for t in pending) >= _KEYS_PER_INSERT:
                _insert(con, pending)
            shards.append(shard)
        _insert(con, pending)
        duplicates = con.execute(
            "SELECT shard, input_row, input_key, first_row FROM ("
            "  SELECT *, min(input_row) OVER (PARTITION BY input_key) AS first_row FROM keys)"
            " WHERE input_row > first_row ORDER BY shard, input_row").fetchall()
    finally:
        con.close()
        shutil.rmtree(spill, ignore_errors=True)
    _mark_duplicates(plan_dir, duplicates)
    return shards


def _keys_of(batch: pa.RecordBatch, shard: int) -> pa.Table:
    rows = batch.select([c for c in _KEY_COLUMNS if c in batch.schema.names]).to_pylist()
    return pa.table({"input_key": pa.array([keys.input_key(r) for r in rows], pa.string()),
                     "input_row": batch.column("input_row").cast(pa.int64()),
                     "shard": pa.array([shard] * len(rows), pa.int32())})


def _insert(con, pending: list[pa.Table]) -> None:
    if not pending:
        return
    con.register("batch_keys", pa.concat_tables(pending))
    con.execute("INSERT INTO keys SELECT * FROM batch_keys")
    con.unregister("batch_keys")
    pending.clear()


def _mark_duplicates(plan_dir: Path, duplicates: list[tuple]) -> None:
    """Set `problem = duplicate_input` on every later occurrence of an input key."""
    by_shard: dict[int, dict[int, str]] = {}
    for shard, row, key, first in duplicates:
        by_shard.setdefault(shard, {})[row] = f"input key {key} first appears at manifest row {first}"
    for shard, details in by_shard.items():
        path = plan_dir / f"{warehouse.part_name(shard)}.parquet"
        table = pq.read_table(path)
        rows = table["input_row"].to_pylist()
        problem = [("duplicate_input" if r in details else p) for r, p in zip(rows, table["problem"].to_pylist())]
        detail = [details.get(r, d) for r, d in zip(rows, table["problem_detail"].to_pylist())]
        table = table.set_column(table.schema.get_field_index("problem"), "problem", pa.array(problem, pa.string()))
        table = table.set_column(table.schema.get_field_index("problem_detail"), "problem_detail",
                                 pa.array(detail, pa.string()))
        _write_part(table, plan_dir, shard)


def _write_part(table: pa.Table, plan_dir: Path, shard: int) -> None:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    warehouse.write_durable(plan_dir / f"{warehouse.part_name(shard)}.parquet", sink.getvalue().to_pybytes())

"""The dataset on disk: per-shard publish with a done marker, committed-only reads, `_SUCCESS`.

Layout of a dataset directory:
  <table>/part-00000.parquet   one file per table per shard (HOUSE_STYLE "Schemas")
  _plan/part-00000.parquet     the manifest rows of each shard (written by `plan`)
  _staging/part-00000/         a shard being written; never read
  _done/part-00000.json        written last: the shard is committed (counts inside)
  _SUCCESS                     written by `commit`: committed shards, counts, versions, config

A shard's files are staged, renamed into place, and only then marked done, so a reader that
goes through `read_table` never sees a half-written shard, and a re-run recomputes exactly
the shards that have no done marker.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from curation.errors import OperatorError
from warehouse_schemas import registry


class DatasetError(OperatorError, RuntimeError):
    """A dataset directory that cannot be read; the message names the fix."""


def part_name(shard: int) -> str:
    return f"part-{shard:05d}"


def code_version() -> str:
    """Package version plus the git commit when running from a checkout."""
    from importlib.metadata import version

    try:
        sha = subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=9"], capture_output=True,
                             text=True, cwd=Path(__file__).parent, timeout=5).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        sha = ""
    return f"{version('alchemist')}+{sha}" if sha else version("alchemist")


def conform(table: pa.Table, name: str) -> pa.Table:
    """Select and cast `table` to the registered schema of `name` (missing columns: nulls)."""
    schema = registry.schema(name)
    columns = []
    for f in schema:
        if f.name in table.column_names:
            columns.append(table.column(f.name).cast(f.type))
        else:
            columns.append(pa.nulls(table.num_rows, f.type))
    return pa.Table.from_arrays(columns, schema=schema)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_shard(root: Path, shard: int, tables: dict[str, pa.Table], run_meta: dict) -> dict:
    """Stage every table of one shard, move them into place, then write the done marker."""
    root, part = Path(root), part_name(shard)
    staging = root / "_staging" / part
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    counts = {}
    for name, table in tables.items():
        table = conform(table, name)
        meta = {**(table.schema.metadata or {}), b"alchemist": json.dumps(run_meta).encode()}
        pq.write_table(table.replace_schema_metadata(meta), staging / f"{name}.parquet")
        counts[name] = table.num_rows
    for name in tables:
        (root / name).mkdir(parents=True, exist_ok=True)
        os.replace(staging / f"{name}.parquet", root / name / f"{part}.parquet")
    shutil.rmtree(staging, ignore_errors=True)
    (root / "_done").mkdir(exist_ok=True)
    _write_atomic(root / "_done" / f"{part}.json", json.dumps({"shard": shard, "counts": counts}).encode())
    return counts


def committed_shards(root: Path) -> list[int]:
    """Shards listed in `_SUCCESS` when the run was committed, else those with a done marker."""
    root = Path(root)
    success = root / "_SUCCESS"
    if success.exists():
        return list(json.loads(success.read_text())["shards"])
    done = root / "_done"
    return sorted(int(p.stem.split("-")[1]) for p in done.glob("part-*.json")) if done.exists() else []


def shard_counts(root: Path, shard: int) -> dict:
    return json.loads((Path(root) / "_done" / f"{part_name(shard)}.json").read_text())["counts"]


def read_table(root: Path, name: str) -> pa.Table:
    """All committed rows of one table (an empty table with the schema when there are none)."""
    root = Path(root)
    if not root.exists():
        raise DatasetError(f"dataset directory {root} does not exist; run `alchemist curate --out {root}` first")
    schema = registry.schema(name)
    parts = [root / name / f"{part_name(s)}.parquet" for s in committed_shards(root)]
    tables = [conform(pq.read_table(p), name) for p in parts if p.exists()]
    return pa.concat_tables(tables) if tables else schema.empty_table()


def file_metadata(path: Path) -> dict:
    """The run metadata stored in one Parquet file (schema version, config, code version)."""
    meta = pq.read_schema(path).metadata or {}
    out = {k.decode(): v.decode() for k, v in meta.items() if k != b"alchemist"}
    if b"alchemist" in meta:
        out.update(json.loads(meta[b"alchemist"]))
    return out


def commit(root: Path, shards: list[int], run_meta: dict) -> dict:
    """Write `_SUCCESS` for a run whose every planned shard is committed."""
    root = Path(root)
    missing = [s for s in shards if not (root / "_done" / f"{part_name(s)}.json").exists()]
    if missing:
        raise DatasetError(f"shards {missing} of {root} are not committed; re-run the curation to finish them")
    totals: dict[str, int] = {}
    for s in shards:
        for name, n in shard_counts(root, s).items():
            totals[name] = totals.get(name, 0) + n
    success = {
        "shards": sorted(shards),
        "counts": totals,
        "schema_versions": {n: registry.version_of(n) for n in registry.TABLES},
        **run_meta,
    }
    _write_atomic(root / "_SUCCESS", json.dumps(success, indent=2, sort_keys=True).encode())
    return success

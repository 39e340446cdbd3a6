"""The dataset on disk: per-shard publish with a done marker, committed-only reads, `_SUCCESS`.

Layout of a dataset directory:
  <table>/part-00000.parquet     one file per table per committed shard (docs/architecture.md, "Tables")
  _plan/part-00000.parquet       the manifest rows of each shard (written by `plan`)
  _plan/plan.json                the shard list and the dataset's fingerprint (curation.fingerprint)
  _staging/part-00000.<attempt>/ one attempt at a shard being written; never read
  _done/part-00000.json          written last: the shard is committed (attempt, counts inside)
  _SUCCESS                       written by `commit`: committed shards, counts, versions, config

Publishing a shard: every table is written and fsynced in the attempt's own staging folder,
renamed into `<table>/` (each folder fsynced), and only then is the done marker written. A
shard without a marker is redone from scratch by the next run; each file carries its attempt
id, so a file that another attempt overwrote after the marker is detected, never mixed in.
`commit` removes part files that belong to no committed shard and checks every committed file,
so once `_SUCCESS` exists a glob over `<table>/*.parquet` reads exactly the committed rows.

A shard with no rows for a table writes a schema-only file (no row group): DuckDB, Polars,
Ray Data and Hugging Face `datasets` all read it as zero rows. PNG columns are stored as the
`datasets` Image struct (`bytes`, `path`) with the features in the schema metadata, so
`datasets` decodes them as images; `read_table` hands them back as plain bytes.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curation.errors import OperatorError
from curation.faults import crash_point
from warehouse_schemas import registry

# The storage type of Hugging Face `datasets`' Image feature; a column of this type whose
# feature is declared in the schema metadata is decoded to a PIL image by `load_dataset`.
IMAGE_STORAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
_DISK_FULL = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


class DatasetError(OperatorError, RuntimeError):
    """A dataset directory that cannot be read; the message names the fix."""


def part_name(shard: int) -> str:
    return f"part-{shard:05d}"


def table_path(root: Path, name: str, shard: int) -> Path:
    return Path(root) / name / f"{part_name(shard)}.parquet"


def marker_path(root: Path, shard: int) -> Path:
    return Path(root) / "_done" / f"{part_name(shard)}.json"


# --- Table form: registry schema in memory, Hugging Face-readable on disk --------------------


def is_image_column(field: pa.Field) -> bool:
    """PNG bytes: binary columns named `png` or `<something>_png` (warehouse_schemas)."""
    return pa.types.is_binary(field.type) and (field.name == "png" or field.name.endswith("_png"))


def conform(table: pa.Table, name: str) -> pa.Table:
    """Select and cast `table` to the registered schema of `name` (missing columns: nulls).

    Image columns stored as `IMAGE_STORAGE` structs come back as their PNG bytes.
    """
    schema = registry.schema(name)
    columns = []
    for f in schema:
        if f.name not in table.column_names:
            columns.append(pa.nulls(table.num_rows, f.type))
            continue
        column = table.column(f.name)
        if pa.types.is_struct(column.type) and is_image_column(f):
            column = pc.struct_field(column, "bytes")
        columns.append(column.cast(f.type))
    return pa.Table.from_arrays(columns, schema=schema)


def to_storage(table: pa.Table, run_meta: dict) -> pa.Table:
    """The on-disk form of a conformed table: images as `datasets` Image structs, run metadata."""
    fields, columns, features = [], [], {}
    for f, column in zip(table.schema, table.columns):
        if is_image_column(f):
            chunks = [pa.StructArray.from_arrays([c, pa.nulls(len(c), pa.string())], fields=list(IMAGE_STORAGE))
                      for c in column.chunks]
            column = pa.chunked_array(chunks, IMAGE_STORAGE)
            f = pa.field(f.name, IMAGE_STORAGE)  # nullable, as `datasets` declares its features
            features[f.name] = {"_type": "Image"}
        fields.append(f)
        columns.append(column)
    meta = {**(table.schema.metadata or {}), b"alchemist": json.dumps(run_meta).encode()}
    if features:
        meta[b"huggingface"] = json.dumps({"info": {"features": features}}).encode()
    return pa.Table.from_arrays(columns, schema=pa.schema(fields, metadata=meta))


# --- Durable writes --------------------------------------------------------------------------


def _fsync_path(path: Path) -> None:
    """Flush a file's data, or a folder's entries (renames), to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durable(path: Path, data: bytes) -> None:
    """Replace `path` atomically and durably: temp file, fsync, rename, fsync the folder."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_path(path.parent)


@contextmanager
def disk_errors(root: Path):
    """A full disk (or a file-size limit) is one line that names the fix, not a traceback."""
    try:
        yield
    except OSError as e:
        if e.errno not in _DISK_FULL:
            raise
        raise DatasetError(f"cannot write under {root}: {e.strerror} ({e.filename or 'a file'}); "
                           f"free space there and re-run the same command: committed shards are kept") from None


# --- Publishing a shard ----------------------------------------------------------------------


def write_shard(root: Path, shard: int, tables: dict[str, pa.Table], run_meta: dict) -> dict:
    """Stage every table of one shard, move them into place, then write the done marker."""
    root, part = Path(root), part_name(shard)
    attempt = uuid.uuid4().hex[:12]
    staging = root / "_staging" / f"{part}.{attempt}"  # one folder per attempt: attempts never collide
    meta = {**run_meta, "shard": shard, "attempt": attempt}
    try:
        with disk_errors(root):
            staging.mkdir(parents=True)
            counts = {name: _stage_table(staging / f"{name}.parquet", conform(table, name), meta)
                      for name, table in tables.items()}
            for i, name in enumerate(tables):
                (root / name).mkdir(parents=True, exist_ok=True)
                os.replace(staging / f"{name}.parquet", table_path(root, name, shard))
                _fsync_path(root / name)
                if i == 0:
                    crash_point("after_first_table")
            crash_point("before_done_marker")
            (root / "_done").mkdir(exist_ok=True)
            marker = {"shard": shard, "attempt": attempt, "counts": counts}
            write_durable(marker_path(root, shard), json.dumps(marker).encode())
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return counts


def _stage_table(path: Path, table: pa.Table, meta: dict) -> int:
    stored = to_storage(table, meta)
    with pq.ParquetWriter(path, stored.schema) as writer:
        if table.num_rows:  # no rows: a schema-only file, no empty row group (readers choke on one)
            writer.write_table(stored)
    _fsync_path(path)
    return table.num_rows


# --- Reading ---------------------------------------------------------------------------------


def committed_shards(root: Path) -> list[int]:
    """Shards listed in `_SUCCESS` when the run was committed, else those with a done marker."""
    root = Path(root)
    success = root / "_SUCCESS"
    if success.exists():
        return list(json.loads(success.read_text())["shards"])
    done = root / "_done"
    return sorted(int(p.stem.split("-")[1]) for p in done.glob("part-*.json")) if done.exists() else []


def shard_marker(root: Path, shard: int) -> dict:
    return json.loads(marker_path(root, shard).read_text())


def shard_counts(root: Path, shard: int) -> dict:
    return shard_marker(root, shard)["counts"]


def _redo_hint(root: Path, shard: int) -> str:
    return (f"delete {marker_path(root, shard)} (and {Path(root) / '_SUCCESS'} if present) and "
            f"re-run the same `alchemist curate` to recompute shard {shard}")


def _committed_file(root: Path, name: str, shard: int, marker: dict) -> Path:
    """The file of a committed shard, checked against its done marker (present, same attempt)."""
    path = table_path(root, name, shard)
    if not path.exists():
        raise DatasetError(f"{path} is missing but shard {shard} is committed; {_redo_hint(root, shard)}")
    attempt = marker.get("attempt")
    if attempt and file_metadata(path).get("attempt") != attempt:
        raise DatasetError(f"{path} was overwritten by another attempt after shard {shard} was "
                           f"committed; {_redo_hint(root, shard)}")
    return path


def read_table(root: Path, name: str) -> pa.Table:
    """All committed rows of one table (an empty table with the schema when there are none)."""
    root = Path(root)
    if not root.exists():
        raise DatasetError(f"dataset directory {root} does not exist; run `alchemist curate --out {root}` first")
    schema = registry.schema(name)
    tables = []
    for shard in committed_shards(root):
        marker = shard_marker(root, shard)
        if name in marker["counts"]:  # else a table added to the registry after this shard was written
            tables.append(conform(pq.read_table(_committed_file(root, name, shard, marker)), name))
    return pa.concat_tables(tables) if tables else schema.empty_table()


def file_metadata(path: Path) -> dict:
    """The run metadata stored in one Parquet file (schema version, config, code version)."""
    meta = pq.read_schema(path).metadata or {}
    out = {k.decode(): v.decode() for k, v in meta.items() if k not in (b"alchemist", b"huggingface")}
    if b"alchemist" in meta:
        out.update(json.loads(meta[b"alchemist"]))
    return out


# --- Commit ----------------------------------------------------------------------------------


def commit(root: Path, shards: list[int], run_meta: dict) -> dict:
    """Write `_SUCCESS` for a run whose every planned shard is committed.

    Before it, the table folders are made exact: part files of no committed shard (another
    plan's, an abandoned attempt's) are removed, and every committed file is checked.
    """
    root = Path(root)
    missing = [s for s in shards if not marker_path(root, s).exists()]
    if missing:
        raise DatasetError(f"shards {missing} of {root} are not committed; re-run the curation to finish them")
    markers = {s: shard_marker(root, s) for s in shards}
    with disk_errors(root):
        remove_strays(root, markers)
        totals: dict[str, int] = {}
        for s, marker in markers.items():
            for name, n in marker["counts"].items():
                if pq.read_metadata(_committed_file(root, name, s, marker)).num_rows != n:
                    raise DatasetError(f"{table_path(root, name, s)} does not hold the {n} rows its "
                                       f"done marker counts; {_redo_hint(root, s)}")
                totals[name] = totals.get(name, 0) + n
        success = {
            "shards": sorted(shards),
            "counts": totals,
            "schema_versions": {n: registry.version_of(n) for n in registry.TABLES},
            **run_meta,
        }
        crash_point("before_success")
        write_durable(root / "_SUCCESS", json.dumps(success, indent=2, sort_keys=True).encode())
    shutil.rmtree(root / "_staging", ignore_errors=True)  # attempts that died mid-write
    return success


def remove_strays(root: Path, markers: dict[int, dict]) -> list[Path]:
    """Delete files in the table folders that belong to no committed shard; return them."""
    root = Path(root)
    expected = {table_path(root, name, s) for s, m in markers.items() for name in m["counts"]}
    strays = []
    for name in registry.TABLES:
        folder = root / name
        if not folder.is_dir():
            continue
        strays += [p for p in folder.glob("part-*") if p not in expected]
    for p in strays:
        p.unlink()
    for folder in {p.parent for p in strays}:
        _fsync_path(folder)
    return strays

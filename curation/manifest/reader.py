"""`read_manifest`: detect a manifest's format and stream its rows, whatever the format."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pyarrow as pa

from curation.manifest.delimited import PANDA_COLUMNS, _csv_header, _read_delimited
from curation.manifest.jsonl import _read_jsonl
from curation.manifest.parquet import _read_parquet
from curation.manifest.rows import ROWS_PER_BATCH, SCHEMA, ManifestError, _lower, _rebatch
from curation.manifest.video2dataset import _read_v2d, _v2d_shards

FORMATS = ("csv", "tsv", "jsonl", "parquet", "panda70m", "video2dataset")
_SUFFIX_FORMATS = {
    ".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
    ".parquet": "parquet", ".pq": "parquet",
}


def read_manifest(path: str | Path, *, video_dir: str | Path | None = None) -> pa.Table:
    """All input rows of a manifest as one table of `SCHEMA` (see the module docstring)."""
    batches = list(iter_manifest_batches(path, video_dir=video_dir))
    return pa.Table.from_batches(batches, schema=SCHEMA)


def iter_manifest_batches(path: str | Path, rows_per_batch: int = ROWS_PER_BATCH, *,
                          video_dir: str | Path | None = None) -> Iterator[pa.RecordBatch]:
    """Input rows as record batches of at most `rows_per_batch` rows, read incrementally.

    A missing manifest or an unknown format raises here, before the first batch.
    """
    if rows_per_batch < 1:
        raise ValueError(f"rows_per_batch must be >= 1, got {rows_per_batch}")
    path = Path(path)
    fmt = detect_format(path)
    base = Path(video_dir) if video_dir is not None else (path if path.is_dir() else path.parent)
    return _batches(path, fmt, base.expanduser().absolute(), rows_per_batch)


def _batches(path: Path, fmt: str, base: Path, rows_per_batch: int) -> Iterator[pa.RecordBatch]:
    readers = {"csv": _read_delimited, "tsv": _read_delimited, "panda70m": _read_delimited,
               "jsonl": _read_jsonl, "parquet": _read_parquet, "video2dataset": _read_v2d}
    first_row = 0
    for rows in _rebatch(readers[fmt](path, fmt, base), rows_per_batch):
        numbers = pa.array(range(first_row, first_row + rows.num_rows), pa.int64())
        columns = [c.combine_chunks() for c in rows.columns]
        yield pa.RecordBatch.from_arrays([numbers, *columns], schema=SCHEMA)
        first_row += rows.num_rows


def detect_format(path: str | Path) -> str:
    """One of FORMATS, from the path type, the extension and (for CSV) the header."""
    path = Path(path)
    if not path.exists():
        raise ManifestError(f"manifest {path} does not exist; check the path")
    if path.is_dir():
        if _v2d_shards(path):
            return "video2dataset"
        raise ManifestError(
            f"manifest folder {path} is not a video2dataset output (no shard folders with "
            f"videos or .json files); pass a .csv, .jsonl or .parquet manifest instead")
    suffixes = [x.lower() for x in path.suffixes]
    if suffixes[-1:] == [".gz"] and suffixes[-2:-1] != [".parquet"]:
        suffixes = suffixes[:-1]  # gzip-compressed CSV / TSV / JSONL
    suffix = suffixes[-1] if suffixes else ""
    fmt = _SUFFIX_FORMATS.get(suffix)
    if fmt is None:
        raise ManifestError(
            f"manifest {path.name} has an unknown format {suffix or '(no extension)'!r}; use "
            f".csv, .tsv, .jsonl, .parquet (CSV/TSV/JSONL may be .gz) or a video2dataset "
            f"output folder")
    if fmt == "csv" and all(c in _lower(_csv_header(path, ",")) for c in PANDA_COLUMNS):
        return "panda70m"
    return fmt



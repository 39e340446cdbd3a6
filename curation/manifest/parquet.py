"""Parquet manifests, read one row group batch at a time."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from curation.manifest.rows import ROWS_PER_BATCH, ManifestError, _generic_columns, _rows


def _read_parquet(path: Path, fmt: str, base: Path) -> Iterator[pa.Table]:
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise ManifestError(f"manifest {path.name} is not a readable Parquet file ({e}); "
                            f"re-export it") from None
    wanted = _generic_columns(path, parquet.schema_arrow.names)
    used = sorted({c for c in wanted.values() if c is not None})
    for batch in parquet.iter_batches(batch_size=ROWS_PER_BATCH, columns=used):
        raw = {k: batch.column(c) if c else None for k, c in wanted.items()}
        yield _rows(batch.num_rows, base, **raw)



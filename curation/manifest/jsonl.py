"""JSON Lines manifests (optionally gzip-compressed)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa

from curation.manifest.rows import (CAPTION_ALIASES, END_ALIASES, ID_ALIASES, ROWS_PER_BATCH,
                                    START_ALIASES, VIDEO_ALIASES, ManifestError, _bytes,
                                    _generic_columns, _lower, _open_maybe_gzip, _pick, _rows,
                                    _text)

_JSON_ALIASES = {"video": VIDEO_ALIASES, "caption": CAPTION_ALIASES, "id": ID_ALIASES,
                 "start": START_ALIASES, "end": END_ALIASES}


def _read_jsonl(path: Path, fmt: str, base: Path) -> Iterator[pa.Table]:
    keys: dict[tuple[str, ...], dict[str, str | None]] = {}
    cells: dict[str, list] = {k: [] for k in _JSON_ALIASES}
    problem: list[str | None] = []
    detail: list[str | None] = []
    first = True
    with _open_maybe_gzip(path) as f:
        for line_no, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                # surrogateescape keeps non-UTF-8 caption bytes for ingest to reject.
                obj = json.loads(raw.decode("utf-8", errors="surrogateescape"))
                if not isinstance(obj, dict):
                    raise ValueError("not a JSON object")
            except ValueError as e:
                if first:
                    raise ManifestError(f"manifest {path.name} line {line_no} is not a JSON "
                                        f"object ({e}); write one object per line") from None
                obj, problem_here = {}, ("bad_manifest_row",
                                         f"line {line_no} is not a JSON object: {e}")
            else:
                problem_here = (None, None)
            names = tuple(obj)
            if names not in keys:  # objects may differ in which keys they carry
                keys[names] = {k: _pick(_lower(names), a) for k, a in _JSON_ALIASES.items()}
                if first:
                    _generic_columns(path, list(names))
            first = False
            for k, key in keys[names].items():
                cells[k].append(_json_cell(k, obj.get(key) if key else None))
            problem.append(problem_here[0])
            detail.append(problem_here[1])
            if len(problem) >= ROWS_PER_BATCH:
                yield _json_rows(cells, problem, detail, base)
                cells, problem, detail = {k: [] for k in _JSON_ALIASES}, [], []
    if problem:
        yield _json_rows(cells, problem, detail, base)


def _json_rows(cells: dict[str, list], problem: list, detail: list, base: Path) -> pa.Table:
    n = len(problem)
    arrays = {k: pa.array(v, pa.binary() if k == "caption" else pa.string())
              for k, v in cells.items()}
    return _rows(n, base, **arrays, problem=problem, detail=detail)


def _json_cell(name: str, value: Any) -> Any:
    """Caption back to its original bytes; other values as valid text (or None)."""
    if value is None:
        return None
    if isinstance(value, str):
        raw = value.encode("utf-8", errors="surrogateescape")
        return raw if name == "caption" else raw.decode("utf-8", errors="replace")
    if name == "caption":
        return _bytes(value)
    if isinstance(value, bool):
        return str(value)  # not a time: flagged as bad_timestamps
    return _text(value)



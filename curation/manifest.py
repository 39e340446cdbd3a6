"""Read an input manifest (videos + captions) into typed input rows, streaming.

One reader for every way a video-caption corpus arrives:

  CSV / TSV / JSONL / Parquet   columns `video` and `caption`, optional `start`, `end`, `id`
                                (aliases: video <- video_path, path, filepath, file, url,
                                video_url; caption <- text; id <- video_id, key); times as
                                seconds or "HH:MM:SS.mmm"
  Panda-70M metadata CSV        `videoID, url, timestamp, caption, ...` where `timestamp` and
                                `caption` are Python-literal lists, one entry per clip; the
                                video is the `video`/`path` column or `<videoID>.mp4` in
                                `video_dir` (default: the manifest's folder)
  video2dataset output folder   the `files` layout: `00000/000000000.mp4` + `.txt` caption +
                                `.json` (key, url, ...)

Every format becomes rows of `SCHEMA`. Captions stay raw bytes: decoding them is the ingest
stage's job, so a non-UTF-8 caption becomes a rejection, not a crash. A row the reader cannot
make sense of (an unparsable time, captions that do not match the timestamps) is kept with
`problem` / `problem_detail` set, and ingest rejects it with that reason. Only problems with
the manifest as a whole (missing file, unknown format, no `video` column) raise
`ManifestError`, with one line naming the fix.
"""
from __future__ import annotations

import ast
import bisect
import json
import math
import os
import re
from pathlib import Path
from typing import Any, Iterable, Iterator
from urllib.parse import unquote, urlparse

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from curation.errors import OperatorError

SEGMENT = pa.struct(
    [
        pa.field("start", pa.float64()),
        pa.field("end", pa.float64()),
        pa.field("caption", pa.binary()),
    ]
)
SCHEMA = pa.schema(
    [
        pa.field("input_row", pa.int64(), nullable=False),  # 0-based position in the manifest
        pa.field("id", pa.string()),
        pa.field("video", pa.string()),  # local path (absolute) or URL
        pa.field("caption", pa.binary()),  # raw bytes; ingest decodes strictly
        pa.field("start", pa.float64()),  # seconds
        pa.field("end", pa.float64()),
        pa.field("segments", pa.list_(SEGMENT)),  # Panda-70M: one entry per clip
        pa.field("problem", pa.string()),  # reason code when the row itself is malformed
        pa.field("problem_detail", pa.string()),
    ]
)

ROWS_PER_BATCH = 65_536  # our choice: ~10 MB of Panda-70M rows per batch
CSV_BLOCK_BYTES = 8 << 20  # our choice: pyarrow reads CSV in 8 MB blocks

VIDEO_ALIASES = ("video", "video_path", "path", "filepath", "file", "url", "video_url")
CAPTION_ALIASES = ("caption", "text")
ID_ALIASES = ("id", "video_id", "videoid", "key")
START_ALIASES = ("start", "start_s", "start_time")
END_ALIASES = ("end", "end_s", "end_time")
PANDA_COLUMNS = ("videoid", "timestamp")  # lower-cased columns that mark a Panda-70M CSV
VIDEO_SUFFIXES = (".mp4", ".webm", ".mkv", ".mov", ".avi", ".m4v")

FORMATS = ("csv", "tsv", "jsonl", "parquet", "panda70m", "video2dataset")
_SUFFIX_FORMATS = {
    ".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
    ".parquet": "parquet", ".pq": "parquet",
}
_URL_RE = r"^[A-Za-z][A-Za-z0-9+.\-]*://"
_URL = re.compile(_URL_RE)
_CLOCK_RE = r"^(?:(?P<h>\d+):)?(?P<m>\d{1,2}):(?P<s>\d{1,2}(?:\.\d*)?)$"
_CLOCK = re.compile(_CLOCK_RE)
_NUMBER_RE = r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$"


class ManifestError(OperatorError, ValueError):
    """The manifest as a whole cannot be read; the message is one line naming the fix."""


# --- Public API ------------------------------------------------------------------------------


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


def parse_time(value: Any) -> float | None:
    """Seconds from a number, "12.5", "MM:SS(.mmm)" or "H:MM:SS(.mmm)"; None when blank."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a time")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = value.decode("ascii") if isinstance(value, bytes) else str(value)
        text = text.strip().replace(",", ".")
        if not text:
            return None
        match = _CLOCK.match(text)
        if match:
            h, m, s = match.group("h", "m", "s")
            seconds = int(h or 0) * 3600 + int(m) * 60 + float(s)
        else:
            seconds = float(text)  # raises ValueError on anything else
    if not math.isfinite(seconds):
        raise ValueError(f"{value!r} is not a finite time")
    return seconds


# --- Rows ------------------------------------------------------------------------------------
# Readers yield tables of ROWS (SCHEMA without input_row). Column work is vectorised with
# pyarrow compute, so a Panda-70M-sized manifest costs about a microsecond per row; only
# rare cells (file:// URLs, unparsable times) and Panda-70M's list cells go through Python.

ROWS = pa.schema(list(SCHEMA)[1:])
_NULL_TEXT = pa.scalar(None, pa.string())


def _rebatch(tables: Iterable[pa.Table], size: int) -> Iterator[pa.Table]:
    """Re-cut a stream of tables into tables of exactly `size` rows (the last may be short)."""
    pending: list[pa.Table] = []
    count = 0
    for table in tables:
        if table.num_rows == 0:
            continue
        pending.append(table)
        count += table.num_rows
        if count < size:
            continue
        merged = pa.concat_tables(pending).combine_chunks()
        start = 0
        while merged.num_rows - start >= size:
            yield merged.slice(start, size)
            start += size
        pending = [merged.slice(start)] if start < merged.num_rows else []
        count = merged.num_rows - start
    if count:
        yield pa.concat_tables(pending).combine_chunks()


def _rows(n: int, base: Path, *, id=None, video=None, caption=None, start=None, end=None,
          segments: pa.Array | None = None, problem: list | None = None,
          detail: list | None = None) -> pa.Table:
    """Typed ROWS from raw columns (arrow arrays of any type, or None when absent).

    `problem` / `detail` are problems a reader already found (Python lists, None where the
    row is fine); to those this adds an empty video cell (`missing_video`) and unparsable
    times (`bad_timestamps`).
    """
    video_s = _resolve_all(_as_text(video, n), base)
    start_f, start_bad = _as_seconds(start, n)
    end_f, end_bad = _as_seconds(end, n)
    bad_times = pc.or_(start_bad, end_bad)
    no_video = pc.is_null(video_s)
    if problem is not None or pc.any(bad_times).as_py() or pc.any(no_video).as_py():
        problem = list(problem) if problem is not None else [None] * n
        detail = list(detail) if detail is not None else [None] * n
        for i in _true_indices(bad_times):
            if problem[i] is None:
                problem[i] = "bad_timestamps"
                detail[i] = (f"start {_show(start[i].as_py())} / end {_show(end[i].as_py())} "
                             f"are not seconds or HH:MM:SS.mmm" if start is not None
                             and end is not None else "a time is not seconds or HH:MM:SS.mmm")
        for i in _true_indices(no_video):
            if problem[i] is None:
                problem[i], detail[i] = "missing_video", "the row's video cell is empty"
    columns = {
        "id": _as_text(id, n), "video": video_s, "caption": _as_binary(caption, n),
        "start": start_f, "end": end_f,
        "segments": segments if segments is not None else pa.nulls(n, SEGMENT_LIST),
        "problem": pa.array(problem or [None] * n, pa.string()),
        "problem_detail": pa.array(detail or [None] * n, pa.string()),
    }
    return pa.Table.from_arrays([columns[f.name] for f in ROWS], schema=ROWS)


SEGMENT_LIST = pa.list_(SEGMENT)


def _true_indices(mask: pa.Array) -> list[int]:
    return pc.indices_nonzero(pc.fill_null(mask, False)).to_pylist()


def _as_text(arr: pa.Array | None, n: int) -> pa.Array:
    """Trimmed text, null where empty; invalid UTF-8 outside captions is replaced."""
    if arr is None:
        return pa.nulls(n, pa.string())
    t = arr.type
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        try:
            arr = pc.cast(arr, pa.string())
        except pa.ArrowInvalid:
            arr = pa.array([None if v is None else v.decode("utf-8", "replace")
                            for v in arr.to_pylist()], pa.string())
    elif pa.types.is_floating(t) or not (pa.types.is_string(t) or pa.types.is_large_string(t)
                                         or pa.types.is_integer(t)):
        arr = pa.array([None if v is None else _text(v) for v in arr.to_pylist()], pa.string())
    arr = pc.utf8_trim_whitespace(pc.cast(arr, pa.string()))
    return pc.if_else(pc.equal(arr, ""), _NULL_TEXT, arr)


def _as_binary(arr: pa.Array | None, n: int) -> pa.Array:
    if arr is None:
        return pa.nulls(n, pa.binary())
    t = arr.type
    if pa.types.is_binary(t) or pa.types.is_string(t) or pa.types.is_large_binary(t) \
            or pa.types.is_large_string(t):
        return pc.cast(arr, pa.binary())
    return pa.array([_bytes(v) for v in arr.to_pylist()], pa.binary())


def _as_seconds(arr: pa.Array | None, n: int) -> tuple[pa.Array, pa.Array]:
    """(seconds as float64, bad) from numbers, "12.5" or "H:MM:SS.mmm"; empty -> null."""
    if arr is None:
        return pa.nulls(n, pa.float64()), pa.array([False] * n)
    if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type):
        seconds = pc.cast(arr, pa.float64())
        numeric = pc.is_valid(seconds)
    else:
        text = pc.replace_substring(_as_text(arr, n), ",", ".")
        numeric = pc.match_substring_regex(text, _NUMBER_RE)
        clock = pc.extract_regex(text, _CLOCK_RE)
        part = lambda name: pc.cast(pc.if_else(  # noqa: E731
            pc.equal(pc.struct_field(clock, name), ""), "0", pc.struct_field(clock, name)),
            pa.float64())
        by_clock = pc.add(pc.add(pc.multiply(part("h"), 3600.0), pc.multiply(part("m"), 60.0)),
                          part("s"))
        by_number = pc.cast(pc.if_else(numeric, text, "0"), pa.float64())
        seconds = pc.if_else(pc.fill_null(numeric, False), by_number, by_clock)
        numeric = pc.or_(pc.fill_null(numeric, False), pc.is_valid(clock))
        bad_text = pc.and_(pc.is_valid(text), pc.invert(numeric))
    bad = pc.and_(pc.is_valid(seconds), pc.invert(pc.is_finite(seconds)))
    if not (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)):
        bad = pc.or_(pc.fill_null(bad, False), bad_text)
    bad = pc.fill_null(bad, False)
    return pc.if_else(bad, pa.scalar(None, pa.float64()), seconds), bad


def _resolve_all(text: pa.Array, base: Path) -> pa.Array:
    """Absolute local paths (relative ones joined to `base`) or URLs as given."""
    if len(text) == 0:
        return text
    special = pc.or_(pc.starts_with(text, "~"), pc.starts_with(pc.utf8_lower(text), "file://"))
    if pc.any(special).as_py():  # rare: resolve the whole batch in Python
        return pa.array([None if v is None else _resolve(v, base) for v in text.to_pylist()],
                        pa.string())
    text = pc.replace_substring_regex(text, r"^\./", "")
    keep = pc.or_(pc.match_substring_regex(text, _URL_RE), pc.starts_with(text, "/"))
    joined = pc.binary_join_element_wise(str(base).rstrip("/"), text, "/")
    return pc.if_else(keep, text, joined)


def _resolve(text: str, base: Path) -> str:
    if _URL.match(text):
        if text.lower().startswith("file://"):
            return unquote(urlparse(text).path)
        return text
    path = Path(os.path.expanduser(text))
    return str(path if path.is_absolute() else base / path)


def _text(value: Any) -> str:
    """A cell as text; invalid UTF-8 in non-caption cells is replaced, never raised."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _bytes(value: Any) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    return str(value).encode("utf-8", errors="surrogateescape")


def _show(value: Any, limit: int = 40) -> str:
    text = repr(_text(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _lower(names: Iterable[str]) -> dict[str, str]:
    """Lower-cased, stripped column name -> the name as written."""
    return {n.strip().lower(): n for n in names}


def _pick(columns: dict[str, str], aliases: tuple[str, ...]) -> str | None:
    return next((columns[a] for a in aliases if a in columns), None)


def _generic_columns(path: Path, names: list[str]) -> dict[str, str | None]:
    """Which column holds what, for the generic (non-Panda) formats; raises ManifestError."""
    columns = _lower(names)
    wanted = {"id": _pick(columns, ID_ALIASES), "video": _pick(columns, VIDEO_ALIASES),
              "caption": _pick(columns, CAPTION_ALIASES),
              "start": _pick(columns, START_ALIASES), "end": _pick(columns, END_ALIASES)}
    if wanted["video"] is None:
        raise ManifestError(
            f"manifest {path.name} has no 'video' column (found: {', '.join(names) or 'none'}); "
            f"add one with the path or URL of each video")
    if wanted["caption"] is None:
        raise ManifestError(
            f"manifest {path.name} has no 'caption' column (found: {', '.join(names) or 'none'})"
            f"; add one with each video's caption")
    return wanted


# --- CSV / TSV / Panda-70M -------------------------------------------------------------------


def _csv_header(path: Path, delimiter: str) -> list[str]:
    import csv

    with _open_maybe_gzip(path) as f:
        line = f.readline().decode("utf-8-sig", errors="replace")
    return next(csv.reader([line], delimiter=delimiter), [])


def _read_delimited(path: Path, fmt: str, base: Path) -> Iterator[pa.Table]:
    delimiter = "\t" if fmt == "tsv" else ","
    names = _csv_header(path, delimiter)
    if fmt == "panda70m":
        columns = _lower(names)
        wanted = {"id": columns["videoid"], "timestamp": columns["timestamp"],
                  "video": _pick(columns, ("video", "video_path", "path", "filepath", "file")),
                  "caption": _pick(columns, CAPTION_ALIASES)}
    else:
        wanted = _generic_columns(path, names)
    used = sorted({c for c in wanted.values() if c is not None})
    # Every used column as raw bytes: no cell can fail the whole read on bad UTF-8.
    reader = pa_csv.open_csv(
        path,
        read_options=pa_csv.ReadOptions(block_size=CSV_BLOCK_BYTES),
        parse_options=pa_csv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
        convert_options=pa_csv.ConvertOptions(
            include_columns=used, column_types={c: pa.binary() for c in used}),
    )
    try:
        for batch in reader:
            raw = {k: batch.column(c) if c else None for k, c in wanted.items()}
            if fmt == "panda70m":
                yield _panda_rows(batch.num_rows, base, raw)
            else:
                yield _rows(batch.num_rows, base, **raw)
    except pa.ArrowInvalid as e:
        raise ManifestError(f"manifest {path.name} is not valid {fmt.upper()}: "
                            f"{str(e).splitlines()[0]}; fix or re-export the file") from None


def _panda_rows(n: int, base: Path, raw: dict[str, pa.Array | None]) -> pa.Table:
    """Panda-70M rows: one per video; `timestamp` pairs and `caption` list become segments.

    The list cells are tokenised per row in Python; every time string of the batch is then
    parsed in one vectorised pass.
    """
    ids = _as_text(raw["id"], n)
    default = pc.binary_join_element_wise(ids, "mp4", ".")  # <videoID>.mp4 in video_dir
    video = pc.coalesce(_as_text(raw["video"], n), default)
    stamps = raw["timestamp"].to_pylist()
    captions = raw["caption"].to_pylist() if raw["caption"] is not None else [None] * n
    problem, detail = [None] * n, [None] * n
    times: list[str] = []  # every start and end of the batch, flat
    texts: list[bytes | None] = []
    offsets = [0]  # segments of row i: [offsets[i], offsets[i + 1])
    for i, (cell, caption_cell) in enumerate(zip(stamps, captions)):
        pairs = _time_pairs(cell)
        segment_texts = None if pairs is None else _caption_list(caption_cell, len(pairs) // 2)
        if pairs is None:
            problem[i] = "bad_timestamps"
            detail[i] = (f"timestamp {_show(cell)} is not a list of ['H:MM:SS.mmm', "
                         f"'H:MM:SS.mmm'] pairs")
        elif segment_texts is None:
            problem[i] = "bad_manifest_row"
            detail[i] = (f"caption {_show(caption_cell)} is not a list of {len(pairs) // 2} "
                         f"captions, one per timestamp pair")
        else:
            times.extend(pairs)
            texts.extend(segment_texts)
        offsets.append(len(texts))
    seconds, bad = _as_seconds(pa.array(times, pa.string()), len(times))
    # A row with any unparsable time is rejected whole: its pairs can no longer be trusted.
    for k in _true_indices(bad):
        i = bisect.bisect_right(offsets, k // 2) - 1
        if problem[i] is None:
            problem[i] = "bad_timestamps"
            detail[i] = f"timestamp {_show(stamps[i])} has a time that is not H:MM:SS.mmm"
    starts = pc.take(seconds, pa.array(range(0, len(times), 2), pa.int64()))
    ends = pc.take(seconds, pa.array(range(1, len(times), 2), pa.int64()))
    flat = pa.StructArray.from_arrays([starts, ends, pa.array(texts, pa.binary())],
                                      fields=list(SEGMENT))
    segments = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), flat, type=SEGMENT_LIST,
                                        mask=pa.array([p is not None for p in problem]))
    return _rows(n, base, id=ids, video=video, segments=segments, problem=problem,
                 detail=detail)


# A Python string literal inside a list cell; the fast path for Panda-70M's list columns.
_PY_STR = re.compile(r"""('(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*")""", re.S)  # one group
_SPACE = re.compile(r"\s+")


class _NotAList(ValueError):
    """A cell that is not written as a list at all (as opposed to a malformed list)."""


def _time_pairs(cell: Any) -> list[str] | None:
    """Flat [start0, end0, start1, ...] strings of a `timestamp` cell; None if malformed."""
    try:
        strings, skeleton, _ = _string_list(cell)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    if len(strings) % 2 or any(x is None or isinstance(x, bool) for x in strings):
        return None
    if skeleton != "[" + ",".join(["[,]"] * (len(strings) // 2)) + "]":
        return None
    return [s if isinstance(s, str) else _text(s) for s in strings]


def _caption_list(cell: Any, n: int) -> list[bytes | None] | None:
    """`n` caption byte strings from a Panda caption cell, or None when it does not fit."""
    if cell is None:
        return [None] * n
    try:
        texts, skeleton, codec = _string_list(cell)
    except _NotAList:
        return [_bytes(cell)] * n  # a plain caption shared by every segment
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    if len(texts) != n or skeleton != "[" + "," * (n - 1) + "]":
        return None
    out = []
    for text in texts:
        if text is None:
            out.append(None)
            continue
        text = str(text)
        try:
            out.append(text.encode(codec))
        except UnicodeEncodeError:  # a \u escape in a latin-1 cell: keep it as UTF-8
            out.append(text.encode("utf-8"))
    return out


def _string_list(cell: Any) -> tuple[list[Any], str, str]:
    """(strings in order, skeleton, codec) of a list-literal cell such as "[['a', 'b']]".

    The skeleton is the cell's list structure without its values ("[[,]]"). Fast path: a
    regex for the string literals, unescaped by `ast.literal_eval` only when they hold a
    backslash; any other shape goes through `ast.literal_eval` (literals only). A cell that
    is not valid UTF-8 is read as latin-1, which keeps every byte, so its strings re-encode
    to their original bytes (`codec`).
    """
    if isinstance(cell, (list, tuple)):
        return _flatten(cell), _shape(cell), "utf-8"
    if cell is None:
        raise ValueError("empty cell")
    codec = "utf-8"
    if isinstance(cell, bytes):
        try:
            text = cell.decode("utf-8")
        except UnicodeDecodeError:
            text, codec = cell.decode("latin-1"), "latin-1"
    else:
        text = str(cell)
    text = text.strip()
    if not text.startswith(("[", "(")):
        raise _NotAList("not a list literal")
    parts = _PY_STR.split(text)  # [between, literal, between, literal, ..., between]
    literals = parts[1::2]
    skeleton = _SPACE.sub("", "".join(parts[0::2]))
    if set(skeleton) <= set("[],"):
        return ([lit[1:-1] if "\\" not in lit else ast.literal_eval(lit) for lit in literals],
                skeleton, codec)
    parsed = ast.literal_eval(text)
    return _flatten(parsed), _shape(parsed), codec


def _shape(value: Any) -> str:
    """The skeleton of a parsed value: its lists as brackets, everything else as nothing."""
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_shape(v) for v in value) + "]"
    return ""


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _flatten(v)]
    return [value]


# --- JSONL -----------------------------------------------------------------------------------

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


def _open_maybe_gzip(path: Path):
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic == b"\x1f\x8b":
        import gzip

        return gzip.open(path, "rb")
    return open(path, "rb")


# --- Parquet ---------------------------------------------------------------------------------


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


# --- video2dataset folder --------------------------------------------------------------------


def _v2d_shards(folder: Path) -> list[Path]:
    """Shard folders (or the folder itself) holding video2dataset `files` samples."""
    candidates = sorted(p for p in folder.iterdir() if p.is_dir()) + [folder]
    shards = []
    for shard in candidates:
        if any(p.suffix.lower() in VIDEO_SUFFIXES or (p.suffix == ".json" and p.stem.isdigit())
               for p in shard.iterdir()):
            shards.append(shard)
    return shards


def _read_v2d(path: Path, fmt: str, base: Path) -> Iterator[pa.Table]:
    for shard in _v2d_shards(path):
        files: dict[str, dict[str, Path]] = {}
        for p in shard.iterdir():
            kind = "video" if p.suffix.lower() in VIDEO_SUFFIXES else p.suffix.lower()
            if kind in ("video", ".txt", ".json"):
                files.setdefault(p.stem, {})[kind] = p
        samples = [_v2d_sample(shard, stem, files[stem]) for stem in sorted(files)]
        if not samples:
            continue
        ids, videos, captions, problem, detail = (list(col) for col in zip(*samples))
        yield _rows(len(samples), base, id=pa.array(ids, pa.string()),
                    video=pa.array(videos, pa.string()), caption=pa.array(captions, pa.binary()),
                    problem=problem, detail=detail)


def _v2d_sample(shard: Path, stem: str, files: dict[str, Path]) -> tuple:
    """(id, video, caption bytes, problem, detail) of one video2dataset sample."""
    meta: dict[str, Any] = {}
    if ".json" in files:
        try:
            meta = json.loads(files[".json"].read_text(encoding="utf-8", errors="replace"))
        except ValueError:
            meta = {}
    caption = files[".txt"].read_bytes() if ".txt" in files else None
    if caption is None and isinstance(meta.get("caption"), str):
        caption = meta["caption"].encode("utf-8")
    video = files.get("video", shard / f"{stem}.mp4")
    problem = detail = None
    if "video" not in files:
        status, error = meta.get("status") or "no video file", meta.get("error_message")
        problem = "missing_file"
        detail = f"video2dataset sample {stem} has no video ({status}" + (
            f": {error})" if error else ")")
    return str(meta.get("key") or stem), str(video), caption, problem, detail

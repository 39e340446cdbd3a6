"""Manifest rows: the typed schema every format becomes, and the column helpers they share."""
from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any, Iterable, Iterator
from urllib.parse import unquote, urlparse

import pyarrow as pa
import pyarrow.compute as pc

from curation.errors import OperatorError
from model.media import URL_RE, is_url

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

VIDEO_ALIASES = ("video", "video_path", "path", "filepath", "file", "url", "video_url")
CAPTION_ALIASES = ("caption", "text")
ID_ALIASES = ("id", "video_id", "videoid", "key")
START_ALIASES = ("start", "start_s", "start_time")
END_ALIASES = ("end", "end_s", "end_time")

_CLOCK_RE = r"^(?:(?P<h>\d+):)?(?P<m>\d{1,2}):(?P<s>\d{1,2}(?:\.\d*)?)$"
_CLOCK = re.compile(_CLOCK_RE)
_NUMBER_RE = r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$"


class ManifestError(OperatorError, ValueError):
    """The manifest as a whole cannot be read; the message is one line naming the fix."""


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
    keep = pc.or_(pc.match_substring_regex(text, URL_RE), pc.starts_with(text, "/"))
    joined = pc.binary_join_element_wise(str(base).rstrip("/"), text, "/")
    return pc.if_else(keep, text, joined)


def _resolve(text: str, base: Path) -> str:
    if is_url(text):
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


def _open_maybe_gzip(path: Path):
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic == b"\x1f\x8b":
        import gzip

        return gzip.open(path, "rb")
    return open(path, "rb")



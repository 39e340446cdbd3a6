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
import json
import math
import os
import re
from pathlib import Path
from typing import Any, Iterable, Iterator
from urllib.parse import unquote, urlparse

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

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
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
_CLOCK = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:\.\d*)?)$")


class ManifestError(ValueError):
    """The manifest as a whole cannot be read; the message is one line naming the fix."""


# --- Public API ------------------------------------------------------------------------------


def read_manifest(path: str | Path, *, video_dir: str | Path | None = None) -> pa.Table:
    """All input rows of a manifest as one table of `SCHEMA` (see the module docstring)."""
    batches = list(iter_manifest_batches(path, video_dir=video_dir))
    return pa.Table.from_batches(batches, schema=SCHEMA)


def iter_manifest_batches(path: str | Path, rows_per_batch: int = ROWS_PER_BATCH, *,
                          video_dir: str | Path | None = None) -> Iterator[pa.RecordBatch]:
    """Input rows as record batches of at most `rows_per_batch` rows, read incrementally."""
    if rows_per_batch < 1:
        raise ValueError(f"rows_per_batch must be >= 1, got {rows_per_batch}")
    path = Path(path)
    fmt = detect_format(path)
    base = Path(video_dir) if video_dir is not None else (path if path.is_dir() else path.parent)
    base = base.expanduser().absolute()
    readers = {"csv": _read_delimited, "tsv": _read_delimited, "panda70m": _read_delimited,
               "jsonl": _read_jsonl, "parquet": _read_parquet, "video2dataset": _read_v2d}
    first_row = 0
    for rows in _rebatch(readers[fmt](path, fmt, base), rows_per_batch):
        yield _to_batch(rows, first_row)
        first_row += len(rows["video"])


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
    suffix = path.suffix.lower()
    fmt = _SUFFIX_FORMATS.get(suffix)
    if fmt is None:
        raise ManifestError(
            f"manifest {path.name} has an unknown format {suffix or '(no extension)'!r}; use "
            f".csv, .tsv, .jsonl, .parquet or a video2dataset output folder")
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
            h, m, s = match.groups()
            seconds = int(h or 0) * 3600 + int(m) * 60 + float(s)
        else:
            seconds = float(text)  # raises ValueError on anything else
    if not math.isfinite(seconds):
        raise ValueError(f"{value!r} is not a finite time")
    return seconds


# --- Rows ------------------------------------------------------------------------------------
# Readers yield chunks as dicts of equal-length Python lists with the keys below; `_to_batch`
# turns one into a typed record batch.

_KEYS = ("id", "video", "caption", "start", "end", "segments", "problem", "problem_detail")


def _empty_rows() -> dict[str, list]:
    return {k: [] for k in _KEYS}


def _append(rows: dict[str, list], **values: Any) -> None:
    for k in _KEYS:
        rows[k].append(values.get(k))


def _rebatch(chunks: Iterable[dict[str, list]], size: int) -> Iterator[dict[str, list]]:
    pending = _empty_rows()
    for chunk in chunks:
        for k in _KEYS:
            pending[k].extend(chunk[k])
        while len(pending["video"]) >= size:
            yield {k: v[:size] for k, v in pending.items()}
            pending = {k: v[size:] for k, v in pending.items()}
    if pending["video"]:
        yield pending


def _to_batch(rows: dict[str, list], first_row: int) -> pa.RecordBatch:
    n = len(rows["video"])
    arrays = [pa.array(range(first_row, first_row + n), pa.int64())]
    arrays += [pa.array(rows[f.name], f.type) for f in list(SCHEMA)[1:]]
    return pa.RecordBatch.from_arrays(arrays, schema=SCHEMA)


def _row(base: Path, video: Any, caption: Any, id_: Any = None, start: Any = None,
         end: Any = None) -> dict[str, Any]:
    """One generic row: resolve the video, keep caption bytes, parse the times."""
    row: dict[str, Any] = {"id": _text(id_) or None, "video": _resolve(video, base),
                           "caption": _bytes(caption)}
    try:
        row["start"], row["end"] = parse_time(start), parse_time(end)
    except (ValueError, UnicodeDecodeError):
        row["problem"] = "bad_timestamps"
        row["problem_detail"] = (f"start {_show(start)} / end {_show(end)} are not seconds "
                                 f"or HH:MM:SS.mmm")
    if row["video"] is None:
        row["problem"], row["problem_detail"] = "missing_video", "the row's video cell is empty"
    return row


def _resolve(video: Any, base: Path) -> str | None:
    """An absolute local path (relative ones against `base`) or the URL as given."""
    text = _text(video).strip()
    if not text:
        return None
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


def _missing_video(path: Path, names: Iterable[str]) -> ManifestError:
    found = ", ".join(names) or "none"
    return ManifestError(
        f"manifest {path.name} has no 'video' column (found: {found}); add one with the path "
        f"or URL of each video")


def _missing_caption(path: Path, names: Iterable[str]) -> ManifestError:
    found = ", ".join(names) or "none"
    return ManifestError(
        f"manifest {path.name} has no 'caption' column (found: {found}); add one with each "
        f"video's caption")


# --- CSV / TSV / Panda-70M -------------------------------------------------------------------


def _csv_header(path: Path, delimiter: str) -> list[str]:
    import csv

    with open(path, "rb") as f:
        line = f.readline().decode("utf-8-sig", errors="replace")
    return next(csv.reader([line], delimiter=delimiter), [])


def _read_delimited(path: Path, fmt: str, base: Path) -> Iterator[dict[str, list]]:
    delimiter = "\t" if fmt == "tsv" else ","
    names = _csv_header(path, delimiter)
    columns = _lower(names)
    if fmt == "panda70m":
        video_col = _pick(columns, ("video", "video_path", "path", "filepath", "file"))
        wanted = {"id": columns["videoid"], "video": video_col,
                  "timestamp": columns["timestamp"], "caption": _pick(columns, CAPTION_ALIASES)}
    else:
        wanted = {"id": _pick(columns, ID_ALIASES), "video": _pick(columns, VIDEO_ALIASES),
                  "caption": _pick(columns, CAPTION_ALIASES),
                  "start": _pick(columns, START_ALIASES), "end": _pick(columns, END_ALIASES)}
        if wanted["video"] is None:
            raise _missing_video(path, names)
    if wanted["caption"] is None:
        raise _missing_caption(path, names)
    used = sorted({c for c in wanted.values() if c is not None})
    # Every used column as raw bytes: no cell can fail the whole read on bad UTF-8.
    reader = pa_csv.open_csv(
        path,
        read_options=pa_csv.ReadOptions(block_size=CSV_BLOCK_BYTES),
        parse_options=pa_csv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
        convert_options=pa_csv.ConvertOptions(
            include_columns=used, column_types={c: pa.binary() for c in used}),
    )
    get = lambda batch, key: (batch.column(wanted[key]).to_pylist() if wanted.get(key)  # noqa: E731
                              else [None] * batch.num_rows)
    try:
        for batch in reader:
            rows = _empty_rows()
            if fmt == "panda70m":
                for id_, video, stamps, caption in zip(
                        get(batch, "id"), get(batch, "video"), get(batch, "timestamp"),
                        get(batch, "caption")):
                    _append(rows, **_panda_row(base, id_, video, stamps, caption))
            else:
                for id_, video, caption, start, end in zip(
                        get(batch, "id"), get(batch, "video"), get(batch, "caption"),
                        get(batch, "start"), get(batch, "end")):
                    _append(rows, **_row(base, video, caption, id_, start, end))
            yield rows
    except pa.ArrowInvalid as e:
        raise ManifestError(f"manifest {path.name} is not valid {fmt.upper()}: "
                            f"{str(e).splitlines()[0]}; fix or re-export the file") from None


def _panda_row(base: Path, id_: Any, video: Any, stamps: Any, captions: Any) -> dict[str, Any]:
    """One Panda-70M video row: `timestamp` pairs and `caption` list become segments."""
    vid = _text(id_).strip()
    if video is None or not _text(video).strip():
        video = f"{vid}.mp4" if vid else None
    row = _row(base, video, None, vid)
    try:
        pairs = _literal(stamps)[0]
        if not isinstance(pairs, (list, tuple)) or not all(
                isinstance(p, (list, tuple)) and len(p) == 2 for p in pairs):
            raise ValueError("not a list of [start, end] pairs")
        times = [(parse_time(s), parse_time(e)) for s, e in pairs]
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError,
            UnicodeDecodeError):
        return {**row, "problem": "bad_timestamps",
                "problem_detail": f"timestamp {_show(stamps)} is not a list of "
                                  f"['H:MM:SS.mmm', 'H:MM:SS.mmm'] pairs"}
    texts = _caption_list(captions, len(times))
    if texts is None:
        return {**row, "problem": "bad_manifest_row",
                "problem_detail": f"caption {_show(captions)} is not a list of "
                                  f"{len(times)} captions, one per timestamp pair"}
    row["segments"] = [{"start": s, "end": e, "caption": c} for (s, e), c in zip(times, texts)]
    return row


def _literal(value: Any) -> tuple[Any, str]:
    """A Python-literal cell parsed with `ast.literal_eval` (literals only), and the codec.

    A cell that is not valid UTF-8 is parsed as latin-1, which keeps every byte, so the
    strings inside can be re-encoded to their original bytes (see `_caption_list`).
    """
    if isinstance(value, (list, tuple)):
        return value, "utf-8"
    codec = "utf-8"
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            value, codec = value.decode("latin-1"), "latin-1"
    text = str(value).strip()
    if not text.startswith(("[", "(")):
        raise ValueError("not a list literal")
    return ast.literal_eval(text), codec


def _caption_list(value: Any, n: int) -> list[bytes | None] | None:
    """`n` caption byte strings from a Panda caption cell, or None when it does not fit."""
    if value is None:
        return [None] * n
    try:
        parsed, codec = _literal(value)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        one = _bytes(value)  # a plain caption shared by every segment
        return [one] * n
    if not isinstance(parsed, (list, tuple)) or len(parsed) != n:
        return None
    out = []
    for text in parsed:
        if text is None:
            out.append(None)
            continue
        text = str(text)
        try:
            out.append(text.encode(codec))
        except UnicodeEncodeError:  # a \u escape in a latin-1 cell: keep it as UTF-8
            out.append(text.encode("utf-8"))
    return out


# --- JSONL -----------------------------------------------------------------------------------


def _read_jsonl(path: Path, fmt: str, base: Path) -> Iterator[dict[str, list]]:
    opener = _open_maybe_gzip(path)
    columns: dict[str, str] | None = None
    keys: dict[str, str | None] = {}
    rows = _empty_rows()
    with opener as f:
        for line_no, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                # surrogateescape keeps non-UTF-8 caption bytes for ingest to reject.
                obj = json.loads(raw.decode("utf-8", errors="surrogateescape"))
                if not isinstance(obj, dict):
                    raise ValueError("not a JSON object")
            except ValueError as e:
                if columns is None:
                    raise ManifestError(f"manifest {path.name} line {line_no} is not a JSON "
                                        f"object ({e}); write one object per line") from None
                _append(rows, problem="bad_manifest_row",
                        problem_detail=f"line {line_no} is not a JSON object: {e}")
                continue
            if columns is None:
                columns = _lower(obj)
                keys = {k: _pick(columns, a) for k, a in _JSON_ALIASES.items()}
                if keys["video"] is None:
                    raise _missing_video(path, list(obj))
                if keys["caption"] is None:
                    raise _missing_caption(path, list(obj))
            value = {k: _json_value(k, obj.get(key) if key else None) for k, key in keys.items()}
            _append(rows, **_row(base, value["video"], value["caption"], value["id"],
                                 value["start"], value["end"]))
            if len(rows["video"]) >= ROWS_PER_BATCH:
                yield rows
                rows = _empty_rows()
    if rows["video"]:
        yield rows


_JSON_ALIASES = {"video": VIDEO_ALIASES, "caption": CAPTION_ALIASES, "id": ID_ALIASES,
                 "start": START_ALIASES, "end": END_ALIASES}


def _json_value(name: str, value: Any) -> Any:
    """Undo the surrogateescape decoding: caption back to its bytes, other text made valid."""
    if isinstance(value, str):
        raw = value.encode("utf-8", errors="surrogateescape")
        return raw if name == "caption" else raw.decode("utf-8", errors="replace")
    return value


def _open_maybe_gzip(path: Path):
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic == b"\x1f\x8b":
        import gzip

        return gzip.open(path, "rb")
    return open(path, "rb")


# --- Parquet ---------------------------------------------------------------------------------


def _read_parquet(path: Path, fmt: str, base: Path) -> Iterator[dict[str, list]]:
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise ManifestError(f"manifest {path.name} is not a readable Parquet file ({e}); "
                            f"re-export it") from None
    names = parquet.schema_arrow.names
    columns = _lower(names)
    wanted = {"id": _pick(columns, ID_ALIASES), "video": _pick(columns, VIDEO_ALIASES),
              "caption": _pick(columns, CAPTION_ALIASES),
              "start": _pick(columns, START_ALIASES), "end": _pick(columns, END_ALIASES)}
    if wanted["video"] is None:
        raise _missing_video(path, names)
    if wanted["caption"] is None:
        raise _missing_caption(path, names)
    used = sorted({c for c in wanted.values() if c is not None})
    for batch in parquet.iter_batches(batch_size=ROWS_PER_BATCH, columns=used):
        get = lambda key: (batch.column(wanted[key]).to_pylist() if wanted[key]  # noqa: E731
                           else [None] * batch.num_rows)
        rows = _empty_rows()
        for id_, video, caption, start, end in zip(get("id"), get("video"), get("caption"),
                                                   get("start"), get("end")):
            _append(rows, **_row(base, video, caption, id_, start, end))
        yield rows


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


def _read_v2d(path: Path, fmt: str, base: Path) -> Iterator[dict[str, list]]:
    for shard in _v2d_shards(path):
        files: dict[str, dict[str, Path]] = {}
        for p in shard.iterdir():
            kind = "video" if p.suffix.lower() in VIDEO_SUFFIXES else p.suffix.lower()
            if kind in ("video", ".txt", ".json"):
                files.setdefault(p.stem, {})[kind] = p
        rows = _empty_rows()
        for stem in sorted(files):
            _append(rows, **_v2d_row(shard, stem, files[stem]))
        yield rows


def _v2d_row(shard: Path, stem: str, files: dict[str, Path]) -> dict[str, Any]:
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
    row = _row(shard, str(video), caption, meta.get("key") or stem)
    if "video" not in files:
        status = meta.get("status") or "no video file"
        error = meta.get("error_message")
        row["problem"] = "missing_file"
        row["problem_detail"] = f"video2dataset sample {stem} has no video ({status}" + (
            f": {error})" if error else ")")
    return row

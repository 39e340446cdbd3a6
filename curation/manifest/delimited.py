"""CSV / TSV manifests and Panda-70M's metadata CSV (list-valued timestamp and caption cells)."""
from __future__ import annotations

import ast
import bisect
import re
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from curation.manifest.rows import (CAPTION_ALIASES, SEGMENT, SEGMENT_LIST, ManifestError,
                                    _as_seconds, _as_text, _bytes, _generic_columns, _lower,
                                    _open_maybe_gzip, _pick, _rows, _show, _text, _true_indices)

CSV_BLOCK_BYTES = 8 << 20  # our choice: pyarrow reads CSV in 8 MB blocks
PANDA_COLUMNS = ("videoid", "timestamp")  # lower-cased columns that mark a Panda-70M CSV


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



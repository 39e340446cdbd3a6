"""Manifest reader: every supported format into the same typed input rows."""
from __future__ import annotations

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curation.manifest import (
    SCHEMA,
    ManifestError,
    detect_format,
    iter_manifest_batches,
    parse_time,
    read_manifest,
)


def _rows(path, **kw):
    table = read_manifest(path, **kw)
    assert table.schema == SCHEMA
    return table.to_pylist()


# --- CSV / TSV -------------------------------------------------------------------------------


def test_csv_with_aliases_times_and_relative_paths(tmp_path):
    path = tmp_path / "clips.csv"
    path.write_bytes(
        b"Path,text,start,end,id\n"
        b'videos/a.mp4,"A dog runs, then stops.\nThe end.",1.5,00:00:02.250,\n'
        b"/abs/b.mp4,A cat sleeps.,,,cat-1\n"
        b"https://example.com/c.mp4,A car drives.,0:05,1:02:03.5,\n"
    )
    rows = _rows(path)
    assert detect_format(path) == "csv"
    assert [r["input_row"] for r in rows] == [0, 1, 2]
    assert rows[0]["video"] == str(tmp_path / "videos" / "a.mp4")
    assert rows[0]["caption"] == b"A dog runs, then stops.\nThe end."
    assert (rows[0]["start"], rows[0]["end"]) == (1.5, 2.25)
    assert rows[0]["id"] is None and rows[1]["id"] == "cat-1"
    assert rows[1]["video"] == "/abs/b.mp4" and rows[1]["start"] is None
    assert rows[2]["video"] == "https://example.com/c.mp4"
    assert (rows[2]["start"], rows[2]["end"]) == (5.0, 3723.5)
    assert all(r["problem"] is None and r["segments"] is None for r in rows)


def test_csv_keeps_non_utf8_caption_bytes_and_flags_bad_times(tmp_path):
    path = tmp_path / "m.csv"
    path.write_bytes(b"video,caption,start,end\nx.mp4,caf\xe9 au lait,later,3\ny.mp4,,,\n")
    bad, empty = _rows(path)
    assert bad["caption"] == b"caf\xe9 au lait"  # decoding is ingest's job
    assert bad["problem"] == "bad_timestamps" and "later" in bad["problem_detail"]
    assert empty["caption"] == b"" and empty["problem"] is None


def test_tsv_and_gzip_csv(tmp_path):
    path = tmp_path / "m.tsv"
    path.write_text("video\tcaption\nv.mp4\tA bird, flying.\n")
    (row,) = _rows(path)
    assert row["video"] == str(tmp_path / "v.mp4") and row["caption"] == b"A bird, flying."
    gz = tmp_path / "m.csv.gz"
    gz.write_bytes(gzip.compress(b"video,caption\nv.mp4,A bird.\n"))
    assert _rows(gz)[0]["caption"] == b"A bird."


def test_empty_video_cell_is_a_row_problem(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("video,caption\n,A bird.\n")
    (row,) = _rows(path)
    assert row["video"] is None and row["problem"] == "missing_video"


# --- JSONL / Parquet -------------------------------------------------------------------------


def test_jsonl_aliases_bad_lines_and_gzip(tmp_path):
    lines = [
        json.dumps({"video_path": "a.mp4", "caption": "A fox.", "start": "0:01", "end": 2}),
        "{not json",
        json.dumps({"video_path": "b.mp4", "caption": "A hen.", "key": 7}),
    ]
    path = tmp_path / "m.jsonl"
    path.write_bytes(("\n".join(lines) + "\n\n").encode() + b'{"video_path": "c.mp4", '
                     b'"caption": "bad \xff byte"}\n')
    rows = _rows(path)
    assert [r["video"] for r in rows] == [str(tmp_path / "a.mp4"), None,
                                         str(tmp_path / "b.mp4"), str(tmp_path / "c.mp4")]
    assert (rows[0]["start"], rows[0]["end"]) == (1.0, 2.0)
    assert rows[1]["problem"] == "bad_manifest_row" and "line 2" in rows[1]["problem_detail"]
    assert rows[2]["id"] == "7"
    assert rows[3]["caption"] == b"bad \xff byte"
    gz = tmp_path / "m.ndjson"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    assert _rows(gz) == rows


def test_parquet_mixed_time_types_and_urls(tmp_path):
    path = tmp_path / "m.parquet"
    pq.write_table(pa.table({
        "url": ["a.mp4", "file:///data/b%20c.mp4", "s3://bucket/d.mp4"],
        "caption": ["one", "two", None],
        "start": [0.5, None, 2.0],
        "end": ["00:00:01.000", None, "3"],
        "video_id": [1, 2, 3],
    }), path)
    rows = _rows(path)
    assert [r["video"] for r in rows] == [str(tmp_path / "a.mp4"), "/data/b c.mp4",
                                         "s3://bucket/d.mp4"]
    assert [(r["start"], r["end"]) for r in rows] == [(0.5, 1.0), (None, None), (2.0, 3.0)]
    assert [r["id"] for r in rows] == ["1", "2", "3"]
    assert rows[2]["caption"] is None


# --- Panda-70M -------------------------------------------------------------------------------

PANDA_HEADER = b"videoID,url,timestamp,caption,matching_score,desirable_filtering\n"


def test_panda70m_rows_become_segments(tmp_path):
    path = tmp_path / "panda70m_testing.csv"
    path.write_bytes(
        PANDA_HEADER
        + b"""abc,https://www.youtube.com/watch?v=abc,"[['0:00:00.000', '0:00:05.005'], """
          b"""['0:00:05.005', '0:01:02.500']]","['A man talks.', ""A dog's toy.""]","""
          b""""[0.44, 0.38]",good\n"""
        + b"""def,u,"[['0:00:00.000', '0:00:01.000']]","['A man.', 'extra']",[0.1],good\n"""
        + b"""ghi,u,"[['0:00:00', 'soon']]","['x']",[0.1],good\n"""
        + b"""gh2,u,"[['0:00:00', None]]","['x']",[0.1],good\n"""
        + b"""mno,u,"[['0:00:00.000', '0:00:01.000']]","['unclosed",[0.1],good\n"""
        + b"""jkl,u,"[['0:00:00.000', '0:00:01.000'], ['0:00:01.000', '0:00:02.000']]","""
          b""""['caf\xe9', 'fine']",[0.1],good\n"""
    )
    assert detect_format(path) == "panda70m"
    abc, mismatch, bad_time, null_time, unclosed, latin = _rows(path)
    assert abc["id"] == "abc" and abc["video"] == str(tmp_path / "abc.mp4")
    assert abc["caption"] is None and abc["start"] is None
    assert abc["segments"] == [
        {"start": 0.0, "end": 5.005, "caption": b"A man talks."},
        {"start": 5.005, "end": 62.5, "caption": b"A dog's toy."},
    ]
    assert mismatch["problem"] == "bad_manifest_row" and mismatch["segments"] is None
    assert bad_time["problem"] == null_time["problem"] == "bad_timestamps"
    assert unclosed["problem"] == "bad_manifest_row"
    # A non-UTF-8 cell keeps each caption's original bytes; only that segment will fail.
    assert [s["caption"] for s in latin["segments"]] == [b"caf\xe9", b"fine"]
    assert _rows(path, video_dir="/videos")[0]["video"] == "/videos/abc.mp4"


def test_panda70m_prefers_an_explicit_video_column(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text('videoID,url,timestamp,caption,path\n'
                    'abc,u,"[[\'0:00:00.000\', \'0:00:01.000\']]","[\'A hen.\']",clips/x.mp4\n')
    (row,) = _rows(path)
    assert row["video"] == str(tmp_path / "clips" / "x.mp4")
    assert row["segments"] == [{"start": 0.0, "end": 1.0, "caption": b"A hen."}]


# --- video2dataset ---------------------------------------------------------------------------


def test_video2dataset_folder(tmp_path):
    out = tmp_path / "v2d"
    for shard, keys in (("00000", ["000000000", "000000001"]), ("00001", ["000010000"])):
        (out / shard).mkdir(parents=True)
        for k in keys:
            (out / shard / f"{k}.mp4").write_bytes(b"\x00")
            (out / shard / f"{k}.txt").write_bytes(f"caption {k}".encode())
            (out / shard / f"{k}.json").write_text(json.dumps(
                {"key": k, "url": f"https://x/{k}.mp4", "status": "success"}))
    (out / "00000" / "000000001.txt").write_bytes(b"bad \xff caption")
    (out / "00001" / "000010001.json").write_text(json.dumps(
        {"key": "000010001", "status": "failed_to_download", "error_message": "HTTP 403"}))
    (out / "00000.parquet").write_bytes(b"PAR1")  # v2d's per-shard table is ignored
    (out / "00000_stats.json").write_text("{}")
    assert detect_format(out) == "video2dataset"
    rows = _rows(out)
    assert [r["id"] for r in rows] == ["000000000", "000000001", "000010000", "000010001"]
    assert rows[0]["video"] == str(out / "00000" / "000000000.mp4")
    assert rows[0]["caption"] == b"caption 000000000"
    assert rows[1]["caption"] == b"bad \xff caption"
    assert rows[3]["problem"] == "missing_file" and "HTTP 403" in rows[3]["problem_detail"]


# --- Errors and streaming --------------------------------------------------------------------


@pytest.mark.parametrize("name, content, expected", [
    ("nope.csv", None, "does not exist"),
    ("m.txt", "video,caption\n", "unknown format '.txt'"),
    ("m.csv", "file_name,label\na,b\n", "no 'video' column (found: file_name, label)"),
    ("m.csv", "video,label\na,b\n", "no 'caption' column"),
    ("m.jsonl", '{"name": "a"}\n', "no 'video' column"),
    ("m.jsonl", "[1, 2]\n", "not a JSON object"),
    ("m.parquet", "not parquet", "not a readable Parquet file"),
])
def test_manifest_errors_are_one_line_with_a_fix(tmp_path, name, content, expected):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(ManifestError) as info:
        list(iter_manifest_batches(path))
    message = str(info.value)
    assert expected in message and "\n" not in message
    assert ";" in message  # every message names what to do after the semicolon


def test_folder_that_is_not_video2dataset(tmp_path):
    (tmp_path / "notes").mkdir()
    with pytest.raises(ManifestError, match="not a video2dataset output"):
        iter_manifest_batches(tmp_path)  # raised before the first batch is asked for


def test_batches_stream_with_continuous_rows(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("video,caption\n" + "".join(f"v{i}.mp4,c{i}\n" for i in range(10)))
    batches = list(iter_manifest_batches(path, rows_per_batch=4))
    assert [b.num_rows for b in batches] == [4, 4, 2]
    assert pa.Table.from_batches(batches).equals(read_manifest(path))
    assert read_manifest(path).column("input_row").to_pylist() == list(range(10))


def test_empty_manifest_is_an_empty_table(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("video,caption\n")
    table = read_manifest(path)
    assert table.num_rows == 0 and table.schema == SCHEMA


@pytest.mark.parametrize("value, seconds", [
    (None, None), ("", None), (3, 3.0), (2.5, 2.5), ("1.25", 1.25), ("01:02", 62.0),
    ("0:00:05.005", 5.005), ("1:00:00,5", 3600.5), (b"7", 7.0),
])
def test_parse_time(value, seconds):
    assert parse_time(value) == seconds


@pytest.mark.parametrize("value", ["soon", "1:2:3:4", float("nan"), True, "inf"])
def test_parse_time_rejects(value):
    with pytest.raises(ValueError):
        parse_time(value)

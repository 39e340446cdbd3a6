"""Ingest stage: probed candidate clips, one specific reason per broken input."""
from __future__ import annotations

import csv
import shutil
import socket

import av
import numpy as np
import pyarrow as pa
import pytest

from curation import keys
from curation.demo_data import BALL_CAPTION
from curation.manifest import SCHEMA, iter_manifest_batches, read_manifest
from curation.stage import OUTCOME_FIELDS
from curation.stages.ingest import OUTPUT_SCHEMA, REASONS, WRITES, IngestStage

WORK_COLUMNS = ("input_key", "video_id", "source", "caption", "clip_key", "start_s", "end_s",
                "duration_s", "fps", "width", "height", "codec", "n_frames", "size_bytes")


def _manifest_rows(**columns) -> pa.Table:
    """Manifest rows (SCHEMA) from a few columns; the rest null."""
    n = len(next(iter(columns.values())))
    data = {f.name: columns.get(f.name, [None] * n) for f in SCHEMA}
    data["input_row"] = list(range(n))
    return pa.Table.from_pydict(data, schema=SCHEMA)


def _expected(manifest) -> list[str]:
    with open(manifest, encoding="utf-8", errors="replace", newline="") as f:
        return [row["expect"] for row in csv.DictReader(f)]


@pytest.fixture(scope="module")
def broken_out(broken_manifest):
    return IngestStage()(read_manifest(broken_manifest)).to_pylist()


def test_each_broken_row_gets_its_specific_reason(broken_manifest, broken_out):
    expected = _expected(broken_manifest)
    got = [r["reason"] or "" for r in broken_out]
    assert got == expected
    assert {e for e in expected if e} - {"duplicate_input"} >= {
        "missing_file", "unreadable_video", "not_a_video", "zero_length", "audio_only",
        "absurd_video", "empty_caption", "caption_not_utf8", "clip_out_of_range",
        "bad_timestamps", "private_host", "unsupported_url_scheme"}
    for row in broken_out:
        assert row["status"] == ("ok" if row["reason"] is None else "rejected")
        assert row["reason"] is None or row["reason"] in REASONS
        assert row["input_key"] and row["video_id"] and row["source"]  # rejections are keyed
        if row["reason"]:
            assert row["detail"] and "\n" not in row["detail"]


def test_valid_rows_carry_every_work_column(broken_out):
    ok = [r for r in broken_out if r["status"] == "ok"]
    assert len(ok) == 2
    whole, timed = ok
    for row in ok:
        assert all(row[c] is not None for c in WORK_COLUMNS), row
        assert row["codec"] == "h264" and (row["width"], row["height"]) == (256, 192)
        assert row["fps"] == pytest.approx(24.0) and row["n_frames"] == 48
        assert row["caption"] == BALL_CAPTION
    assert (whole["start_s"], whole["end_s"]) == (0.0, whole["duration_s"])
    assert whole["input_key"] == whole["video_id"]
    assert (timed["start_s"], timed["end_s"]) == (0.5, 1.5)
    assert timed["input_key"] == timed["clip_key"] == f"{timed['video_id']}:500-1500"


def test_output_matches_the_declared_writes(broken_manifest):
    table = IngestStage()(read_manifest(broken_manifest))
    assert table.schema == OUTPUT_SCHEMA
    assert list(table.schema)[: len(WRITES)] == list(WRITES)
    assert table.schema.names[len(WRITES):] == [f.name for f in OUTCOME_FIELDS]
    assert set(WORK_COLUMNS) <= {f.name for f in WRITES}
    types = {f.name: f.type for f in WRITES}
    assert types["width"] == pa.int32() and types["caption"] == pa.string()
    assert types["n_frames"] == pa.int64() and types["start_s"] == pa.float64()


def test_keys_are_stable_and_follow_the_key_format(broken_manifest, broken_out):
    again = IngestStage()(read_manifest(broken_manifest)).to_pylist()
    for a, b in zip(broken_out, again):
        assert (a["input_key"], a["clip_key"], a["video_id"]) == \
            (b["input_key"], b["clip_key"], b["video_id"])
    whole = broken_out[0]
    assert whole["video_id"] == keys.video_id(None, whole["source"])
    assert whole["clip_key"] == keys.clip_key(whole["video_id"], 0.0, whole["duration_s"])


def test_manifest_id_becomes_the_video_id(ball_clip):
    path = str(ball_clip[0])
    rows = _manifest_rows(id=["ball-1", None], video=[path, path],
                          caption=[b"A red ball.", b"A red ball."])
    out = IngestStage()(rows).to_pylist()
    assert out[0]["video_id"] == "ball-1" and out[0]["clip_key"] == "ball-1:0-2000"
    assert out[1]["video_id"] == keys.video_id(None, path)


def test_panda_segments_are_candidates_with_their_own_captions(ball_clip):
    path = str(ball_clip[0])
    segments = [
        {"start": 0.0, "end": 1.0, "caption": b" A red ball rolls. "},
        {"start": 1.0, "end": 1.9, "caption": b"\xff broken"},
        {"start": 1.0, "end": 2.3, "caption": b"Within the tolerance."},
        {"start": 1.5, "end": 4.0, "caption": b"Past the end."},
        {"start": 0.0, "end": 1.0, "caption": b"The same clip again."},
    ]
    rows = _manifest_rows(id=["vid"], video=[path], segments=[segments])
    out = IngestStage()(rows).to_pylist()
    assert [r["reason"] for r in out] == [None, "caption_not_utf8", None, "clip_out_of_range",
                                         "duplicate_input"]
    assert [r["input_key"] for r in out] == ["vid:0-1000", "vid:1000-1900", "vid:1000-2300",
                                            "vid:1500-4000", "vid:0-1000"]
    assert out[0]["caption"] == "A red ball rolls." and out[0]["clip_key"] == "vid:0-1000"
    assert out[2]["end_s"] == pytest.approx(2.0)  # clamped to the video's end
    assert out[2]["clip_key"] == "vid:1000-2000"
    assert all(r["video_id"] == "vid" and r["duration_s"] == pytest.approx(2.0) for r in out)


def test_a_panda_row_whose_video_fails_is_one_rejection(tmp_path):
    segments = [{"start": 0.0, "end": 1.0, "caption": b"a"}] * 3
    rows = _manifest_rows(id=["gone"], video=[str(tmp_path / "gone.mp4")], segments=[segments])
    (row,) = IngestStage()(rows).to_pylist()
    assert row["reason"] == "missing_file" and row["input_key"] == "gone"
    assert "3 segments" in row["detail"]


def test_one_probe_per_video_per_batch(ball_clip, monkeypatch):
    path = str(ball_clip[0])
    stage = IngestStage()
    calls = []
    real = stage.probe
    monkeypatch.setattr(stage, "probe", lambda source: calls.append(source) or real(source))
    rows = _manifest_rows(video=[path] * 3, caption=[b"a"] * 3, start=[0.0, 0.5, 1.0],
                          end=[0.5, 1.0, 1.5])
    out = stage(rows).to_pylist()
    assert [r["status"] for r in out] == ["ok"] * 3 and calls == [path]


def test_unexpected_errors_become_keyed_rejections(ball_clip, monkeypatch):
    stage = IngestStage()

    def boom(source):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(stage, "probe", boom)
    rows = _manifest_rows(video=[str(ball_clip[0])], caption=[b"a"])
    (row,) = stage(rows).to_pylist()
    assert row["reason"] == "ingest_error" and "disk on fire" in row["detail"]
    assert row["input_key"] == row["video_id"] == keys.video_id(None, str(ball_clip[0]))


def test_sanity_limits_are_settings(ball_clip):
    rows = _manifest_rows(video=[str(ball_clip[0])], caption=[b"a"])
    (row,) = IngestStage(max_hours=1e-4)(rows).to_pylist()
    assert row["reason"] == "absurd_video" and "duration" in row["detail"]
    (row,) = IngestStage(max_fps=10)(rows).to_pylist()
    assert row["reason"] == "absurd_video" and "fps" in row["detail"]


def _write_mkv(path, frames, audio_s: float = 0.0) -> None:
    """Matroska (no sample index), optionally with a silent audio track `audio_s` long."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=24)
        video.width, video.height, video.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        audio = container.add_stream("aac", rate=16000) if audio_s else None
        for i, frame in enumerate(frames):
            picture = av.VideoFrame.from_ndarray(frame, format="rgb24")
            picture.pts = i
            container.mux(video.encode(picture))
        container.mux(video.encode(None))
        for i in range(0, int(audio_s * 16000), 1024) if audio else ():
            sound = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp",
                                               layout="mono")
            sound.sample_rate, sound.pts = 16000, i
            container.mux(audio.encode(sound))
        if audio:
            container.mux(audio.encode(None))


def test_matroska_truncation_and_video_duration(ball_clip, tmp_path):
    frames = ball_clip[1]  # 48 frames: 2 s of video
    _write_mkv(tmp_path / "clip.mkv", frames)
    data = (tmp_path / "clip.mkv").read_bytes()
    (tmp_path / "cut.mkv").write_bytes(data[: len(data) // 2])
    _write_mkv(tmp_path / "long_audio.mkv", frames, audio_s=3.0)
    names = ["clip.mkv", "cut.mkv", "long_audio.mkv"]
    rows = _manifest_rows(video=[str(tmp_path / n) for n in names], caption=[b"a"] * 3)
    clip, cut, long_audio = IngestStage()(rows).to_pylist()
    assert clip["status"] == "ok" and clip["duration_s"] == pytest.approx(2.0, abs=0.01)
    assert cut["reason"] == "unreadable_video" and "truncated" in cut["detail"]
    # The header says 3 s (the audio); candidate clips must stop where the video does.
    assert long_audio["status"] == "ok"
    assert long_audio["duration_s"] == pytest.approx(2.0, abs=0.05)
    assert long_audio["end_s"] == long_audio["duration_s"]


def test_urls_are_probed_and_failures_are_unreachable(ball_clip, tmp_path, serve_dir):
    folder = tmp_path / "www"
    folder.mkdir()
    shutil.copyfile(ball_clip[0], folder / "ball.mp4")
    base = serve_dir(folder)
    rows = _manifest_rows(video=[f"{base}/ball.mp4", f"{base}/missing.mp4"],
                          caption=[b"A red ball.", b"A red ball."])
    ok, missing = IngestStage(allow_private_hosts=True)(rows).to_pylist()  # a loopback server
    assert ok["status"] == "ok" and ok["source"] == f"{base}/ball.mp4"
    assert ok["n_frames"] == 48 and ok["duration_s"] == pytest.approx(2.0)
    assert missing["reason"] == "unreachable_url" and "404" in missing["detail"]


@pytest.mark.timeout(60)
def test_a_stalled_server_cannot_hang_the_probe():
    with socket.socket() as server:  # accepts connections, never answers
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        url = f"http://127.0.0.1:{server.getsockname()[1]}/clip.mp4"
        rows = _manifest_rows(video=[url], caption=[b"a"])
        (row,) = IngestStage(timeout_s=1.0, allow_private_hosts=True)(rows).to_pylist()
    assert row["reason"] == "unreachable_url" and "within 1 s" in row["detail"]


def test_ingest_reads_runner_batches_and_empty_batches(broken_manifest):
    stage = IngestStage()
    batches = [pa.Table.from_batches([b]) for b in iter_manifest_batches(broken_manifest, 5)]
    out = pa.concat_tables([stage(b) for b in batches])
    # Duplicates are caught within a batch; across batches the runner deduplicates.
    assert out.num_rows == sum(b.num_rows for b in batches)
    empty = stage(read_manifest(broken_manifest).slice(0, 0))
    assert empty.num_rows == 0 and empty.schema == OUTPUT_SCHEMA


def test_reasons_are_documented():
    assert all(code.islower() and " " not in code for code in REASONS)
    assert all(meaning and "\n" not in meaning for meaning in REASONS.values())
    assert IngestStage.name == "ingest" and IngestStage.level == "input"

"""FramesStage: the 5/50/95% frames of a clip, nearest by timestamp, as rows of `frames`.

The video's frames carry their index as an 8-bit bar code, so a stored PNG says which frame
was picked.
"""
from __future__ import annotations


import pyarrow as pa
import pytest

from curation import keys
from curation.stage import OK, REJECTED
from curation.stages.frames import REASONS, FramesStage
from curation.synthetic import index_coded_frames, read_index_code, write_video
from curation.imaging import decode_png
from warehouse_schemas import registry

FPS, N_FRAMES, HW = 25, 100, (64, 128)


def coded_video(path, n=N_FRAMES):
    return write_video(index_coded_frames(n, HW), path, fps=FPS, gop=12)


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return coded_video(tmp_path_factory.mktemp("frames") / "coded.mp4")


def clip_row(source, start_s, end_s, vid="vid"):
    return dict(input_key="in0", video_id=vid, source=str(source), caption="a clip",
                clip_key=keys.clip_key(vid, start_s, end_s), start_s=start_s, end_s=end_s)


def run(stage, rows):
    out = stage(pa.Table.from_pylist(rows))
    return out, out.to_pylist()


def test_percentile_frames_are_the_nearest_frames(video):
    row = clip_row(video, 0.9, 3.1)  # targets 1.01, 2.00, 2.99 s -> frames 25, 50, 75
    table, (out,) = run(FramesStage(), [row])
    assert out["status"] == OK and out["reason"] is None
    frames = out["frames"]
    assert [f["frame_index"] for f in frames] == [1, 2, 3]
    assert [f["percentile"] for f in frames] == pytest.approx([0.05, 0.5, 0.95])
    assert [f["target_s"] for f in frames] == pytest.approx([1.01, 2.0, 2.99])
    assert [f["timestamp_s"] for f in frames] == pytest.approx([1.0, 2.0, 3.0])
    assert [read_index_code(decode_png(f["png"])) for f in frames] == [25, 50, 75]
    assert [f["frame_key"] for f in frames] == [f"{row['clip_key']}/frame{k}" for k in (1, 2, 3)]
    assert all((f["width"], f["height"]) == (HW[1], HW[0]) for f in frames)


def test_output_matches_the_frames_table_schema(video):
    table, rows = run(FramesStage(), [clip_row(video, 0.0, 4.0), clip_row(video, 1.0, 2.0)])
    expected = pa.list_(pa.struct(list(registry.schema("frames"))))
    assert table.schema.field("frames").type == expected
    exploded = [f for r in rows for f in r["frames"]]
    frames = pa.Table.from_pylist(exploded, schema=registry.schema("frames"))
    frames.validate(full=True)
    assert frames.num_rows == 6 and len(set(frames.column("frame_key").to_pylist())) == 6


def test_max_side_downscales_in_the_decoder(video):
    (out,) = run(FramesStage(max_side=64), [clip_row(video, 0.0, 4.0)])[1]
    f = out["frames"][1]
    assert (f["width"], f["height"]) == (64, 32)
    assert decode_png(f["png"]).shape == (32, 64, 3)
    assert read_index_code(decode_png(f["png"])) == 50


def test_unreadable_video_is_rejected_not_raised(tmp_path, video):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"this is not a video")
    table, rows = run(FramesStage(), [clip_row(bad, 0.0, 1.0), clip_row(tmp_path / "missing.mp4", 0.0, 1.0),
                                      clip_row(video, 0.0, 1.0)])
    assert [r["status"] for r in rows] == [REJECTED, REJECTED, OK]
    assert [r["reason"] for r in rows[:2]] == ["frame_decode_failed"] * 2
    assert rows[0]["frames"] is None and rows[0]["detail"]
    assert set(REASONS) >= {r["reason"] for r in rows if r["reason"]}


def test_clip_beyond_the_stream_is_out_of_range(video):
    (out,) = run(FramesStage(), [clip_row(video, 6.0, 8.0)])[1]  # the video is 4 s long
    assert out["status"] == REJECTED and out["reason"] == "frame_out_of_range"
    assert "3.960" in out["detail"]  # the last frame is what the decoder had to offer


def test_percentiles_are_validated():
    with pytest.raises(ValueError):
        FramesStage(percentiles=(0.5, 1.5))
    assert FramesStage(percentiles=[0.1, 0.9]).percentiles == (0.1, 0.9)

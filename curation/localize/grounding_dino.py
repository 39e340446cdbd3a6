"""GroundingDINO (paper 3.1): open-set boxes for entity words, one forward pass per frame.

Prompts. All entity words of a clip go into one caption, GroundingDINO's own format
"man. red ball." (lower case, each phrase closed by a period). GroundingDINO masks text
self-attention at the periods, so each phrase is encoded on its own and one pass serves
every word. A caption longer than the model's `max_text_len` tokens is split into several.

From token logits to words. The model scores every query (box) against every text token:
`logits (B, Q, T)`. The tokenizer's character offsets tell which tokens belong to which
phrase, so for query q and word w
    score(q, w)      = max over w's tokens of sigmoid(logit)   (GroundingDINO's box score)
    text_score(q, w) = mean over w's tokens of sigmoid(logit)  (how much of the phrase lit up)
and each box is given to the one word it scores highest (a box never serves two words).
Every box whose score reaches a low floor is returned, best first per word, so the
`detections` table can re-tune thresholds later; `select()` applies the thresholds.

Batching. Frames of many clips go through the model together; frames are grouped by size
because the processor pads a batch to its largest image and padding changes the backbone's
features, and results must not depend on what else was in the batch. Text padding is
masked and does not change results.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from curation.imaging import Box, clip_box

DEFAULT_MODEL = "IDEA-Research/grounding-dino-tiny"  # paper 3.1: GroundingDINO Swin-T (OGC)


# --- prompts -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prompt:
    text: str  # "man. red ball."
    words: tuple[str, ...]  # the caller's words, in prompt order
    spans: tuple[tuple[int, int], ...]  # each word's phrase as [start, end) characters of text


def phrase(word: str) -> str:
    """A word as GroundingDINO reads it: lower case, no periods (they separate phrases)."""
    return " ".join(word.lower().replace(".", " ").split())


def build_prompt(words: Sequence[str]) -> Prompt:
    parts, spans, pos = [], [], 0
    for w in words:
        p = phrase(w)
        spans.append((pos, pos + len(p)))
        parts.append(p + ".")
        pos += len(p) + 2  # the period and the joining space
    return Prompt(" ".join(parts), tuple(words), tuple(spans))


def pack_prompts(words: Sequence[str], count_tokens: Callable[[str], int],
                 max_tokens: int) -> list[Prompt]:
    """Greedy split of `words` into as few prompts as fit `max_tokens` (special tokens included)."""
    prompts: list[Prompt] = []
    current: list[str] = []
    for w in words:
        if current and count_tokens(build_prompt([*current, w]).text) > max_tokens:
            prompts.append(build_prompt(current))
            current = []
        current.append(w)
    if current:
        prompts.append(build_prompt(current))
    return prompts


def token_groups(offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]]) -> list[list[int]]:
    """Token indices of each phrase span, from the tokenizer's `(start, end)` character offsets.

    Special and padding tokens have empty offsets and belong to no phrase; so do the periods,
    which lie outside every span.
    """
    groups = []
    for s, e in spans:
        groups.append([t for t, (ts, te) in enumerate(offsets) if te > ts and ts >= s and te <= e])
    return groups


# --- post-processing ---------------------------------------------------------------------------


@dataclass
class Detection:
    word: str  # the caller's word
    box: Box  # (x0, y0, x1, y1), frame pixels, clipped to the frame
    score: float  # max token probability over the word's tokens
    text_score: float | None  # mean token probability over the word's tokens (None: not a text model)
    rank: int = 0  # 0 = best box for this word in this frame
    query: int = -1  # the model's query slot (debugging only)
    detector: str = ""
    prompt: str | None = None  # the text the box was scored against (text detectors)
    hint: object = None  # optional segmentation hint (offline detectors), never stored


def run_detector(model, inputs: dict) -> tuple[np.ndarray, np.ndarray]:
    """One GroundingDINO forward pass -> (B, Q, T) token logits and (B, Q, 4) normalised
    cxcywh boxes, as float32 numpy (shared by curation and the benchmark's Subj-S)."""
    import torch

    with torch.inference_mode():
        outputs = model(**inputs)
    return outputs.logits.float().cpu().numpy(), outputs.pred_boxes.float().cpu().numpy()


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60.0, 60.0)))


def cxcywh_to_xyxy(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Normalised centre boxes `(Q, 4)` -> pixel corner boxes `(Q, 4)`."""
    cx, cy, w, h = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    return np.stack([(cx - w / 2) * width, (cy - h / 2) * height,
                     (cx + w / 2) * width, (cy + h / 2) * height], axis=1)


def assign_boxes(logits: np.ndarray, boxes: np.ndarray, words: Sequence[str],
                 groups: Sequence[Sequence[int]], width: int, height: int, *,
                 floor: float, max_per_word: int, detector: str = "",
                 prompt: str | None = None) -> list[Detection]:
    """One frame's raw outputs -> detections per word, best first (see the module docstring).

    logits `(Q, T)` raw token logits; boxes `(Q, 4)` normalised `(cx, cy, w, h)`.
    """
    probs = _sigmoid(np.asarray(logits, dtype=np.float64))  # (Q, T)
    n_q = probs.shape[0]
    best = np.full((n_q, len(words)), -1.0)  # (Q, W) max token prob; -1: word has no tokens
    mean = np.zeros((n_q, len(words)))
    for w, toks in enumerate(groups):
        if toks:
            best[:, w] = probs[:, list(toks)].max(axis=1)
            mean[:, w] = probs[:, list(toks)].mean(axis=1)
    if not len(words):
        return []
    owner = best.argmax(axis=1)  # (Q,) the word each box serves; ties go to the earlier word
    score = best[np.arange(n_q), owner]
    xyxy = cxcywh_to_xyxy(np.asarray(boxes, dtype=np.float64), width, height)
    out: list[Detection] = []
    for w, word in enumerate(words):
        qs = [q for q in np.flatnonzero((owner == w) & (score >= floor))]
        qs.sort(key=lambda q: (-score[q], q))
        for rank, q in enumerate(qs[:max_per_word]):
            out.append(Detection(word=word, box=clip_box(xyxy[q], width, height),
                                 score=float(score[q]), text_score=float(mean[q, w]),
                                 rank=rank, query=int(q), detector=detector, prompt=prompt))
    return out


def select(detections: Sequence[Detection], box_threshold: float,
           text_threshold: float) -> dict[str, Detection]:
    """The best detection per word that passes both thresholds (the cheap, re-tunable step)."""
    chosen: dict[str, Detection] = {}
    for d in detections:
        if d.score < box_threshold:
            continue
        if d.text_score is not None and d.text_score < text_threshold:
            continue
        if d.box[2] <= d.box[0] or d.box[3] <= d.box[1]:
            continue  # degenerate after clipping to the frame
        if d.word not in chosen or d.score > chosen[d.word].score:
            chosen[d.word] = d
    return chosen


# --- the model ---------------------------------------------------------------------------------


class GroundingDino:
    """`GroundingDinoForObjectDetection` + its processor, batched over frames."""

    def __init__(self, spec: str = DEFAULT_MODEL, *, device: str = "auto", floor: float = 0.1,
                 max_per_word: int = 10, images_per_forward: int = 16, dtype=None):
        import torch
        from transformers import AutoProcessor, GroundingDinoForObjectDetection

        from model import model_registry

        self.device = model_registry.device(device)
        self.dtype = dtype or model_registry.half_dtype_for(self.device)  # default: half precision on GPU only
        self.processor = model_registry.load(AutoProcessor, spec)
        self.model = model_registry.load(GroundingDinoForObjectDetection, spec, device=self.device,
                                 dtype=self.dtype)
        self.id = f"grounding_dino:{model_registry.parse(spec).id}"
        self.max_tokens = int(self.model.config.max_text_len)
        self.floor, self.max_per_word = floor, max_per_word
        self.images_per_forward = images_per_forward
        self._torch = torch

    def count_tokens(self, text: str) -> int:
        return len(self.processor.tokenizer(text)["input_ids"])

    def detect(self, images: Sequence[np.ndarray], words: Sequence[Sequence[str]]) -> list[list[Detection]]:
        """Detections for `words[i]` on RGB `images[i]`; returns one list per image."""
        units = []  # (image index, prompt)
        for i, ws in enumerate(words):
            if ws:
                units += [(i, p) for p in pack_prompts(ws, self.count_tokens, self.max_tokens)]
        by_size: dict[tuple[int, int], list] = {}
        for unit in units:
            by_size.setdefault(images[unit[0]].shape[:2], []).append(unit)
        out: list[list[Detection]] = [[] for _ in images]
        for group in by_size.values():
            for k in range(0, len(group), self.images_per_forward):
                chunk = group[k:k + self.images_per_forward]
                for (i, _), dets in zip(chunk, self._forward(images, chunk)):
                    out[i].extend(dets)
        return out

    def _forward(self, images, chunk) -> list[list[Detection]]:
        inputs = self.processor(images=[images[i] for i, _ in chunk], text=[p.text for _, p in chunk],
                                padding="longest", truncation=True, max_length=self.max_tokens,
                                return_offsets_mapping=True, return_tensors="pt")
        offsets = inputs.pop("offset_mapping").tolist()
        inputs = {k: (v.to(self.device, self.dtype) if v.is_floating_point() else v.to(self.device))
                  for k, v in inputs.items()}
        logits, boxes = run_detector(self.model, inputs)
        results = []
        for b, (i, prompt) in enumerate(chunk):
            h, w = images[i].shape[:2]
            groups = token_groups(offsets[b], prompt.spans)
            results.append(assign_boxes(logits[b], boxes[b], prompt.words, groups, w, h,
                                        floor=self.floor, max_per_word=self.max_per_word,
                                        detector=self.id, prompt=prompt.text))
        return results

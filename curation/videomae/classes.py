"""The paper's five clip classes (A.1) and the names every other module spells them with.

One label per class is the model's `id2label` entry, the CSV label a person writes in
`alchemist label-sample` sheets, and (for the four undesirable classes) the rejection reason
code; `p_<label>` is the class-probability score column the VideoMAE stage writes.
"""
from __future__ import annotations

import re

DESIRABLE = "desirable"

# label -> the paper's wording (A.1), in model id order. Order is part of the checkpoint
# format: a train-filter checkpoint stores it as id2label, the stage reads it back from there.
CLASSES: dict[str, str] = {
    DESIRABLE: "desirable: real motion of a foreground subject, fit for training",
    "still_image": "still foreground image: an animation of a static image",
    "slight_motion": "slight motion: tiny camera movement and a static foreground object",
    "screen_in_screen": "screen-in-screen: an image or video overlaying a background image or video",
    "screen_recording": "computer screen recording (excluding PC games)",
}
LABELS: tuple[str, ...] = tuple(CLASSES)
UNDESIRABLE: tuple[str, ...] = LABELS[1:]
ID2LABEL: dict[int, str] = dict(enumerate(LABELS))
LABEL2ID: dict[str, int] = {label: i for i, label in ID2LABEL.items()}

# Rejection reasons of the VideoMAE stage: one per undesirable class.
REASONS: dict[str, str] = {label: f"VideoMAE classifier: {CLASSES[label]}" for label in UNDESIRABLE}

# Spellings a person may type into a label sheet, normalised by `normalize_label`.
_ALIASES = {
    "good": DESIRABLE, "ok": DESIRABLE, "keep": DESIRABLE,
    "still": "still_image", "still_foreground_image": "still_image", "static_image": "still_image",
    "slight": "slight_motion", "near_static": "slight_motion",
    "screen_in_screen": "screen_in_screen", "pip": "screen_in_screen",
    "picture_in_picture": "screen_in_screen",
    "screen_recording": "screen_recording", "computer_screen_recording": "screen_recording",
    "screencast": "screen_recording",
}


def score_name(label: str) -> str:
    """The clip_scores name of a class probability: `p_<label>`."""
    return f"p_{label}"


SCORE_NAMES: tuple[str, ...] = tuple(score_name(label) for label in LABELS)


def normalize_label(text: str) -> str | None:
    """A typed label -> its canonical label; None for an empty cell; ValueError if unknown."""
    key = re.sub(r"[^a-z0-9]+", "_", str(text).strip().lower()).strip("_")
    if not key:
        return None
    if key in LABEL2ID:
        return key
    if key in _ALIASES:
        return _ALIASES[key]
    raise ValueError(f"unknown label {text!r}; use one of {', '.join(LABELS)}")

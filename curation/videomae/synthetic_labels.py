"""A seeded, labelled synthetic clip set for `train-filter` tests and demos.

Three of the paper's classes (A.1) that differ ONLY in how things move, so a classifier
cannot pass by recognising a background: every clip shows a ball over a crop of a bundled
photo or texture, and

  desirable      the ball travels across a static (or slowly drifting) scene
  still_image    the whole picture, ball included, is panned or zoomed: one global motion
  slight_motion  the whole picture jitters by a fraction of a pixel: almost nothing moves

Screen-in-screen and screen recordings need real media to be meaningful and are left to a
labelled real set. Writes the clips with `curation.synthetic.write_video` and a label CSV in
the format `alchemist train-filter` reads (path, label, start_s, end_s).
"""
from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np

from curation import synthetic

SCENE_SCALE = 2  # scene side / frame side: room for the camera to pan (our choice)
BLUR_SIGMA = 1.0  # px at scene scale: tames aliasing of fine textures at 32 px (our choice)


def _scene(rng: np.random.Generator, side: int) -> np.ndarray:
    """A random crop of a bundled photo or tinted texture, resized to (side, side)."""
    names = synthetic.PHOTOS + synthetic.TEXTURES
    name = names[int(rng.integers(len(names)))]
    if name in synthetic.TEXTURES:
        image = synthetic.texture(name, tint=tuple(int(c) for c in rng.integers(80, 230, 3)))
    else:
        image = synthetic.photo(name)
    h, w = image.shape[:2]
    crop = int(min(h, w) * rng.uniform(0.4, 0.9))
    y, x = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
    scene = cv2.resize(image[y:y + crop, x:x + crop], (side, side), interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(scene, (0, 0), BLUR_SIGMA)


def _draw_ball(image: np.ndarray, cy: float, cx: float, r: float, color: np.ndarray) -> np.ndarray:
    """`image` with an anti-aliased shaded disc at (cy, cx)."""
    h, w = image.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
    alpha = np.clip(r + 0.5 - d, 0.0, 1.0)[..., None]
    shade = np.clip(1.1 - 0.5 * d / r, 0.4, 1.0)[..., None]
    out = image.astype(np.float32) * (1 - alpha) + alpha * shade * color
    return np.clip(out, 0, 255).astype(np.uint8)


def _window(scene: np.ndarray, cy: float, cx: float, half: float, side: int) -> np.ndarray:
    """The square window of half-size `half` centred at (cy, cx), resampled to side x side."""
    s = 2 * half / side
    m = np.float32([[s, 0, cx - half + s / 2 - 0.5], [0, s, cy - half + s / 2 - 0.5]])
    return cv2.warpAffine(scene, m, (side, side), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REFLECT)


def labelled_clip(label: str, seed: int, side: int = 32, n_frames: int = 16) -> np.ndarray:
    """Frames `(F, side, side, 3)` uint8 of one clip of class `label`."""
    rng = np.random.default_rng(seed)
    big = side * SCENE_SCALE
    scene = _scene(rng, big)
    r = side * rng.uniform(0.16, 0.24)
    color = rng.uniform(60, 255, 3).astype(np.float32)
    t = np.linspace(0.0, 1.0, n_frames)
    c, half = big / 2, side / 2
    if label == "desirable":
        # ball crosses most of the view; the camera holds still or drifts slowly
        a = rng.uniform(0, 2 * np.pi)
        span = side * rng.uniform(0.7, 0.9)
        by, bx = c + np.sin(a) * span * (t - 0.5), c + np.cos(a) * span * (t - 0.5)
        drift = rng.uniform(-0.05, 0.05, 2) * side * (t[:, None] - 0.5)
        return np.stack([_window(_draw_ball(scene, by[i], bx[i], r, color),
                                 c + drift[i, 0], c + drift[i, 1], half, side)
                         for i in range(n_frames)])
    still = _draw_ball(scene, c + rng.uniform(-0.2, 0.2) * side,
                       c + rng.uniform(-0.2, 0.2) * side, r, color)
    if label == "still_image":
        if rng.random() < 0.5:  # pan as far as the ball travels in `desirable`
            a = rng.uniform(0, 2 * np.pi)
            span = side * rng.uniform(0.7, 0.9)
            cy, cx, halves = c + np.sin(a) * span * (t - 0.5), c + np.cos(a) * span * (t - 0.5), \
                np.full(n_frames, half)
        else:  # zoom in or out by 50-70%
            z = rng.uniform(0.5, 0.7) * (1 if rng.random() < 0.5 else -1)
            cy, cx, halves = np.full(n_frames, c), np.full(n_frames, c), half * (1.25 - z * t)
        return np.stack([_window(still, cy[i], cx[i], halves[i], side) for i in range(n_frames)])
    if label == "slight_motion":
        jitter = rng.normal(0.0, 0.15, (n_frames, 2))  # px: hand-held shake of a static scene
        return np.stack([_window(still, c + jitter[i, 0], c + jitter[i, 1], half, side)
                         for i in range(n_frames)])
    raise ValueError(f"no synthetic generator for label {label!r}")


SYNTHETIC_LABELS = ("desirable", "still_image", "slight_motion")


def write_labelled_set(out_dir: str | Path, per_class: int = 80, seed: int = 0, side: int = 32,
                       n_frames: int = 16, fps: float = 8.0,
                       labels: tuple[str, ...] = SYNTHETIC_LABELS) -> Path:
    """Write `per_class` clips of each label and `labels.csv`; returns the CSV path.

    Clip k of label j uses seed `seed * 1_000_003 + j * 100_000 + k`, so sets with different
    seeds share no clip. Paths in the CSV are relative to it (as a hand-made sheet would be).
    """
    out = Path(out_dir)
    (out / "clips").mkdir(parents=True, exist_ok=True)
    rows = []
    for j, label in enumerate(labels):
        for k in range(per_class):
            frames = labelled_clip(label, seed * 1_000_003 + j * 100_000 + k, side, n_frames)
            rel = Path("clips") / f"{label}_{k:04d}.mp4"
            synthetic.write_video(frames, out / rel, fps=fps)
            rows.append({"path": str(rel), "label": label,
                         "start_s": 0.0, "end_s": round(n_frames / fps, 3)})
    csv_path = out / "labels.csv"
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["path", "label", "start_s", "end_s"])
        writer.writeheader()
        writer.writerows(rows)
    return csv_path

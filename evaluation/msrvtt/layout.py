"""The benchmark's on-disk layout: one folder per test clip, as the authors' release names it.

    <benchmark>/samples/<sample>/
        video.mp4                   the clip (H.264)
        frame1.jpg frame2.jpg frame3.jpg   frames at 5 / 50 / 95% of the clip's duration
        summary_text.txt            the caption
        word_tags.json              {"background": [...], "subject": [...], "object": [...]}
        <word>.frameK.png           RGBA reference: box crop of frame K, mask as alpha
        <word>.face.frameK.png      face crop of a human subject on frame K
        background.jpg              the clean background of frame 2
    <benchmark>/samples.parquet     our index: one row per sample (see SAMPLE_SCHEMA)

In file names a word's spaces and slashes become underscores ("red ball" -> red_ball).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa

FRAME_PERCENTILES = (0.05, 0.50, 0.95)  # paper 3.1 / the release: frame1, frame2, frame3
ENTITY_TYPES = ("background", "subject", "object")
VIDEO, CAPTION, WORD_TAGS, BACKGROUND = "video.mp4", "summary_text.txt", "word_tags.json", "background.jpg"
JPEG_QUALITY = 95  # our choice: close to lossless, as the release's frames look
SAMPLES_DIR = "samples"
INDEX = "samples.parquet"

SAMPLE_SCHEMA = pa.schema([
    pa.field("sample", pa.string(), nullable=False),  # folder name under samples/
    pa.field("source", pa.string(), nullable=False),  # the MSR-VTT-style source video
    pa.field("clip_key", pa.string()),  # the curated clip it came from (builder only)
    pa.field("start_s", pa.float64(), nullable=False),
    pa.field("end_s", pa.float64(), nullable=False),
    pa.field("caption", pa.string(), nullable=False),
    pa.field("subjects", pa.list_(pa.string()), nullable=False),
    pa.field("objects", pa.list_(pa.string()), nullable=False),
    pa.field("backgrounds", pa.list_(pa.string()), nullable=False),
    pa.field("origin", pa.string(), nullable=False),  # "build" | "import"
], metadata={"schema_version": "1"})


def safe_word(word: str) -> str:
    """A word as it appears in the release's file names."""
    return word.replace(" ", "_").replace("/", "_")


def frame_name(k: int) -> str:
    return f"frame{k}.jpg"


def ref_name(word: str, k: int, face: bool = False) -> str:
    return f"{safe_word(word)}.{'face.' if face else ''}frame{k}.png"


def percentile_index(n_frames: int, p: float) -> int:
    """The frame on screen at p of the clip's duration: time p * F / fps from the clip start
    falls in frame floor(p * F)."""
    return min(n_frames - 1, max(0, int(np.floor(p * n_frames + 1e-9))))


# --- writing ------------------------------------------------------------------------------------


def write_rgb(path: Path, rgb: np.ndarray) -> None:
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if path.suffix == ".jpg" else []
    if not cv2.imwrite(str(path), cv2.cvtColor(np.ascontiguousarray(rgb[..., :3]), cv2.COLOR_RGB2BGR), params):
        raise OSError(f"cannot write {path}")


def write_rgba(path: Path, rgba: np.ndarray) -> None:
    if not cv2.imwrite(str(path), cv2.cvtColor(np.ascontiguousarray(rgba), cv2.COLOR_RGBA2BGRA)):
        raise OSError(f"cannot write {path}")


def write_text_files(sample_dir: Path, caption: str, word_tags: dict[str, list[str]]) -> None:
    sample_dir.mkdir(parents=True, exist_ok=True)
    (sample_dir / CAPTION).write_text(caption)
    tags = {t: list(word_tags.get(t, [])) for t in ENTITY_TYPES}
    (sample_dir / WORD_TAGS).write_text(json.dumps(tags, indent=1))


def write_video_file(sample_dir: Path, frames: np.ndarray, fps: float) -> None:
    """H.264 yuv420p needs even sides: an odd last row or column is dropped."""
    from curation.synthetic import write_video

    h, w = frames.shape[1] // 2 * 2, frames.shape[2] // 2 * 2
    write_video(frames[:, :h, :w], sample_dir / VIDEO, fps=fps)


def box_crop_rgba(frame: np.ndarray, box_xyxy, mask_box: np.ndarray) -> np.ndarray:
    """The release's reference: the box crop of `frame` with the box-sized mask as alpha.

    The box is clipped to the frame; a mask larger than the crop (boxes at the border) is
    cropped to it, a smaller one is padded with zeros.
    """
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = (int(v) for v in box_xyxy)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"box {tuple(box_xyxy)} has no pixels inside the {w}x{h} frame")
    crop = frame[y0:y1, x0:x1, :3]
    alpha = np.zeros(crop.shape[:2], np.uint8)
    m = np.asarray(mask_box).astype(bool)[: crop.shape[0], : crop.shape[1]]
    alpha[: m.shape[0], : m.shape[1]] = m.astype(np.uint8) * 255
    return np.dstack([crop, alpha])


# --- reading ------------------------------------------------------------------------------------


@dataclass
class Sample:
    name: str
    root: Path
    caption: str
    word_tags: dict[str, list[str]]
    refs: dict[str, list[Path]] = field(default_factory=dict)  # word -> frameK PNGs that exist
    faces: dict[str, list[Path]] = field(default_factory=dict)  # word -> face PNGs that exist

    @property
    def video(self) -> Path:
        return self.root / VIDEO

    @property
    def background(self) -> Path | None:
        path = self.root / BACKGROUND
        return path if path.exists() else None


def read_sample(sample_dir: Path) -> Sample:
    sample_dir = Path(sample_dir)
    tags = json.loads((sample_dir / WORD_TAGS).read_text())
    sample = Sample(sample_dir.name, sample_dir, (sample_dir / CAPTION).read_text().strip(),
                    {t: list(tags.get(t, [])) for t in ENTITY_TYPES})
    for word in sample.word_tags["subject"] + sample.word_tags["object"]:
        for k in (1, 2, 3):
            for face, into in ((False, sample.refs), (True, sample.faces)):
                path = sample_dir / ref_name(word, k, face)
                if path.exists():
                    into.setdefault(word, []).append(path)
    return sample


def sample_dirs(benchmark: Path) -> list[Path]:
    root = Path(benchmark) / SAMPLES_DIR
    return sorted(p for p in root.iterdir() if (p / WORD_TAGS).exists()) if root.exists() else []


def read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise OSError(f"cannot read image {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_rgba(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise OSError(f"cannot read image {path}")
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGRA)
    elif image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2BGRA)
    return cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)


def write_index(benchmark: Path, rows: list[dict]) -> Path:
    import pyarrow.parquet as pq

    path = Path(benchmark) / INDEX
    tmp = path.with_name(f".{path.name}.tmp")
    table = pa.Table.from_pylist(sorted(rows, key=lambda r: r["sample"]), schema=SAMPLE_SCHEMA)
    pq.write_table(table, tmp)
    tmp.replace(path)
    return path

"""`alchemist bench import`: the authors' annotation records + MSR-VTT videos -> our layout.

The release ships, per sample, `<sample>.vid_info.json` (keys `video`, `resolution`,
`timestamp` = [start, end] as "HH:MM:SS.ffffff", `caption`, `word_tags`) and
`<sample>.word_tags_masks.pkl.gz`: a gzipped pickle of {word: [record, ...]} with each record
holding `filename` (frameK.jpg), `box_xyxy` (integer pixels), `mask` (box-sized binary array or
nested list, possibly larger than the crop at the frame border) and `is_face_crop`.

Unpickling runs code chosen by whoever wrote the file, so `RestrictedUnpickler` admits only
plain containers, numbers, strings, booleans and numpy arrays of numeric dtype (with numpy's
own array-reconstruction functions); anything else stops the load with an error naming the
class. A sample whose files cannot be read is reported, never half-written.
"""
from __future__ import annotations

import gzip
import io
import json
import pickle
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.msrvtt import layout

NUMERIC_KINDS = "biufc"  # bool, signed, unsigned, float, complex
_SAFE_BUILTINS = {"set", "frozenset", "complex", "bytearray", "slice", "range"}
_NUMPY_MODULES = ("numpy.core.multiarray", "numpy._core.multiarray", "numpy.core.numeric",
                  "numpy._core.numeric", "numpy")
_NUMPY_NAMES = {"_reconstruct", "scalar", "_frombuffer", "ndarray", "dtype"}
# Release prompts for the SD-2 background inpainting (the authors' preparation script).
BACKGROUND_PROMPT = "clean and empty background"
BACKGROUND_NEGATIVE = "any human or any object, complex pattern and texture"


class UnsafePickleError(ValueError):
    """A pickle asked for something outside the allow-list; the message names it."""


def _checked_dtype(*args: Any) -> np.dtype:
    dtype = np.dtype(*args)
    if dtype.kind not in NUMERIC_KINDS:
        raise UnsafePickleError(f"numpy dtype {dtype.str!r} is not numeric (object and string "
                                f"arrays are refused)")
    return dtype


class RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if module == "builtins" and name in _SAFE_BUILTINS:
            return getattr(__import__("builtins"), name)
        if module == "collections" and name == "OrderedDict":
            import collections

            return collections.OrderedDict
        if module in _NUMPY_MODULES and name in _NUMPY_NAMES:
            if name == "dtype":
                return _checked_dtype
            if name == "ndarray":
                return np.ndarray
            import importlib

            return getattr(importlib.import_module(module), name)
        raise UnsafePickleError(f"refused to load {module}.{name}: only plain containers, numbers, "
                                f"strings, booleans and numeric numpy arrays are allowed")


def _check_arrays(obj: Any) -> None:
    """Belt and braces: no array of a non-numeric dtype survives, however it was built."""
    if isinstance(obj, np.ndarray) and obj.dtype.kind not in NUMERIC_KINDS:
        raise UnsafePickleError(f"numpy array of dtype {obj.dtype} refused")
    if isinstance(obj, dict):
        for k, v in obj.items():
            _check_arrays(k)
            _check_arrays(v)
    elif isinstance(obj, (list, tuple, set, frozenset)):
        for v in obj:
            _check_arrays(v)


def restricted_loads(data: bytes) -> Any:
    obj = RestrictedUnpickler(io.BytesIO(data)).load()
    _check_arrays(obj)
    return obj


def load_masks(path: Path) -> dict[str, list[dict]]:
    with gzip.open(path, "rb") as f:
        data = restricted_loads(f.read())
    if not isinstance(data, dict):
        raise ValueError(f"{path.name} holds a {type(data).__name__}, not a dict of word -> records")
    return data


# --- records ------------------------------------------------------------------------------------


def parse_timestamp(text: str) -> float:
    """"HH:MM:SS.ffffff" -> seconds."""
    hours, minutes, seconds = str(text).strip().split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def parse_resolution(value: Any) -> tuple[int, int]:
    """The clip size as (width, height), from [w, h] or "WxH"."""
    if isinstance(value, str):
        value = value.lower().replace(":", "x").split("x")
    width, height = (int(v) for v in value)
    if width <= 0 or height <= 0:
        raise ValueError(f"resolution {value!r} is not positive")
    return width, height


@dataclass
class VidInfo:
    sample: str
    video: str
    size: tuple[int, int]  # (W, H)
    start_s: float
    end_s: float
    caption: str
    word_tags: dict[str, list[str]]


def read_vid_info(path: Path) -> VidInfo:
    raw = json.loads(path.read_text())
    start, end = (parse_timestamp(t) for t in raw["timestamp"])
    if end <= start:
        raise ValueError(f"timestamp end {raw['timestamp'][1]} is not after start {raw['timestamp'][0]}")
    tags = {t: [str(w) for w in raw["word_tags"].get(t, [])] for t in layout.ENTITY_TYPES}
    return VidInfo(path.name[: -len(".vid_info.json")], str(raw["video"]),
                   parse_resolution(raw["resolution"]), start, end, str(raw["caption"]), tags)


# --- one sample ---------------------------------------------------------------------------------


def cut_clip(video: Path, info: VidInfo) -> tuple[np.ndarray, float]:
    """Frames of [start, end) resized to the annotated resolution, and the frame rate."""
    from curation.video_io import decode_clip, open_video

    container, stream = open_video(video)
    fps = float(stream.average_rate or stream.guessed_rate or 30)
    container.close()
    frames, _ = decode_clip(video, info.start_s, info.end_s, size=info.size)
    if not len(frames):
        raise ValueError(f"no frame of {video.name} lies in [{info.start_s:.3f}, {info.end_s:.3f}) s")
    return frames, fps


def write_references(out: Path, frames: dict[int, np.ndarray], masks: dict[str, list[dict]]) -> list:
    """RGBA references; returns the frame-2 full-frame masks (for the background)."""
    from curation.imaging import paste_mask

    middle = []
    for word, records in masks.items():
        for rec in records:
            k = int(str(rec["filename"]).removeprefix("frame").removesuffix(".jpg"))
            frame, box = frames[k], [int(v) for v in rec["box_xyxy"]]
            mask = np.asarray(rec["mask"]).astype(bool)
            rgba = layout.box_crop_rgba(frame, box, mask)
            layout.write_rgba(out / layout.ref_name(word, k, bool(rec.get("is_face_crop"))), rgba)
            if k == 2:
                h, w = frame.shape[:2]
                middle.append(paste_mask(mask[: box[3] - box[1], : box[2] - box[0]], box, w, h))
    return middle


def write_background(out: Path, frame2: np.ndarray, masks: list, inpainter) -> None:
    """The release's rule: union of frame-2 masks, 4x4 dilation x3, holes filled, inpainted."""
    from curation.background.mask import foreground_mask

    h, w = frame2.shape[:2]
    mask = foreground_mask(masks, h, w, kernel=4, iterations=3)
    clean = inpainter(frame2, mask, prompt=BACKGROUND_PROMPT, negative_prompt=BACKGROUND_NEGATIVE)
    layout.write_rgb(out / layout.BACKGROUND, clean)


def import_sample(info: VidInfo, masks_path: Path, videos: Path, samples: Path, inpainter) -> dict:
    masks = load_masks(masks_path)  # before any file is written: a refused pickle leaves nothing
    video = videos / info.video
    if not video.exists():
        raise FileNotFoundError(f"MSR-VTT video {info.video} not found under {videos}")
    clip, fps = cut_clip(video, info)
    tmp = samples / f".{info.sample}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    layout.write_text_files(tmp, info.caption, info.word_tags)
    layout.write_video_file(tmp, clip, fps)
    frames = {k: clip[layout.percentile_index(len(clip), p)] for k, p in enumerate(layout.FRAME_PERCENTILES, 1)}
    for k, frame in frames.items():
        layout.write_rgb(tmp / layout.frame_name(k), frame)
    middle = write_references(tmp, frames, masks)
    write_background(tmp, frames[2], middle, inpainter)
    final = samples / info.sample
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    return {"sample": info.sample, "source": str(video), "clip_key": None, "start_s": info.start_s,
            "end_s": info.end_s, "caption": info.caption, "subjects": info.word_tags["subject"],
            "objects": info.word_tags["object"], "backgrounds": info.word_tags["background"],
            "origin": "import"}


def import_release(annotations: Path, videos: Path, out: Path, inpainter=None) -> dict:
    """Import every record pair under `annotations`; returns {"imported": [...], "rejected": [...]}."""
    from curation.background.inpaint import make_inpainter
    from curation.errors import OperatorError

    annotations, videos, out = Path(annotations), Path(videos), Path(out)
    for folder, what in ((annotations, "--annotations"), (videos, "--videos")):
        if not folder.is_dir():
            raise OperatorError(f"{what} {folder} is not a directory")
    inpainter = inpainter or make_inpainter("opencv")
    samples = out / layout.SAMPLES_DIR
    samples.mkdir(parents=True, exist_ok=True)
    rows, rejected = [], []
    for info_path in sorted(annotations.glob("*.vid_info.json")):
        name = info_path.name[: -len(".vid_info.json")]
        try:
            info = read_vid_info(info_path)
            rows.append(import_sample(info, annotations / f"{name}.word_tags_masks.pkl.gz",
                                      videos, samples, inpainter))
        except UnsafePickleError as e:
            rejected.append({"sample": name, "reason": "unsafe_pickle", "detail": str(e)})
        except (OSError, ValueError, KeyError, TypeError) as e:
            rejected.append({"sample": name, "reason": "bad_record", "detail": f"{type(e).__name__}: {e}"})
    layout.write_index(out, rows)
    report = {"imported": [r["sample"] for r in rows], "rejected": rejected}
    (out / "import_report.json").write_text(json.dumps(report, indent=1))
    return report

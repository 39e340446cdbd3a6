"""Small generated datasets in our table format (committed like curation output), for the
trainer's tests and the sprite toys: coloured sprites moving over a plain background, each
named by a caption word, with the sprite's RGBA crop (mask as alpha) as its reference.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
from PIL import Image

from curation import warehouse

BACKGROUND = (96, 96, 96)  # mid grey: no palette colour is close to it
SPRITE = 8  # sprite side in pixels at 32 px frames


@dataclass(frozen=True)
class SpriteClip:
    word: str  # "square" or "bar"
    colour: tuple[int, int, int]
    direction: int  # +1 right, -1 left


def png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def sprite_mask(word: str, size: int) -> np.ndarray:
    mask = np.zeros((size, size), dtype=bool)
    if word == "bar":
        mask[:, size // 4 : size - size // 4] = True  # a tall bar
    else:
        mask[:, :] = True
    return mask


def render(clip: SpriteClip, frames: int, hw: tuple[int, int]) -> np.ndarray:
    """(F, H, W, 3) uint8: the sprite crossing the frame on a fixed path."""
    h, w = hw
    size = max(2, h // 4)
    mask = sprite_mask(clip.word, size)
    video = np.empty((frames, h, w, 3), dtype=np.uint8)
    video[:] = BACKGROUND
    top = (h - size) // 2
    for f in range(frames):
        step = (w - size) * f // max(1, frames - 1)
        left = step if clip.direction > 0 else w - size - step
        video[f, top : top + size, left : left + size][mask] = clip.colour
    return video


def reference(clip: SpriteClip, size: int = 24) -> bytes:
    rgba = np.zeros((size, size, 4), dtype=np.uint8)
    mask = sprite_mask(clip.word, size)
    rgba[mask, :3] = clip.colour
    rgba[mask, 3] = 255
    return png(rgba)


def _rows(root: Path, i: int, clip: SpriteClip, frames: int, hw, fps: float) -> dict[str, list[dict]]:
    from curation.synthetic import write_video

    source = write_video(render(clip, frames, hw), root / "videos" / f"clip{i:04d}.mp4", fps=fps)
    key = f"v{i:04d}:0-{int(1000 * frames / fps)}"
    caption = f"a {clip.word} moves {'right' if clip.direction > 0 else 'left'} over a floor"
    start = caption.index(clip.word)
    background = np.full((hw[0], hw[1], 3), BACKGROUND, dtype=np.uint8)
    return {
        "clips": [{"clip_key": key, "video_id": f"v{i:04d}", "input_key": str(i), "source": str(source),
                   "caption": caption, "start_s": 0.0, "end_s": frames / fps, "fps": fps,
                   "width": hw[1], "height": hw[0]}],
        "entities": [{"entity_key": f"{key}/{clip.word}", "clip_key": key, "word": clip.word, "type": "subject",
                      "char_start": start, "char_end": start + len(clip.word), "extractor": "synthetic"},
                     {"entity_key": f"{key}/floor", "clip_key": key, "word": "floor", "type": "background",
                      "char_start": caption.index("floor"), "char_end": caption.index("floor") + 5,
                      "extractor": "synthetic"}],
        "references": [{"ref_key": f"{key}/{clip.word}/frame{k}", "clip_key": key,
                        "entity_key": f"{key}/{clip.word}", "word": clip.word, "frame_index": k,
                        "box_xyxy": [0.0, 0.0, 8.0, 8.0], "rgba_png": reference(clip), "mask_png": png(
                            np.full((8, 8), 255, dtype=np.uint8)), "detector": "synthetic", "segmenter": "synthetic"}
                       for k in (1, 2, 3)],
        "backgrounds": [{"background_key": f"{key}/background", "clip_key": key, "word": "floor",
                         "png": png(background), "mask_png": png(np.zeros(hw, dtype=np.uint8)),
                         "inpainter": "synthetic"}],
    }


def write_sprite_dataset(root, clips: list[SpriteClip], frames: int = 9, hw=(32, 32), fps: float = 24.0,
                         shard_size: int = 4) -> Path:
    """A committed dataset (`_SUCCESS`) with one clip per SpriteClip, `shard_size` per shard."""
    root = Path(root)
    shards = []
    for shard, first in enumerate(range(0, len(clips), shard_size)):
        tables: dict[str, list[dict]] = {}
        for i in range(first, min(first + shard_size, len(clips))):
            for name, rows in _rows(root, i, clips[i], frames, hw, fps).items():
                tables.setdefault(name, []).extend(rows)
        warehouse.write_shard(root, shard, {n: _table(n, rows) for n, rows in tables.items()},
                              {"config": {"profile": "synthetic"}, "code_version": "synthetic"})
        shards.append(shard)
    warehouse.commit(root, shards, {"config": {"profile": "synthetic"}, "code_version": "synthetic"})
    return root


def _table(name: str, rows: list[dict]) -> pa.Table:
    from warehouse_schemas import registry

    schema = registry.schema(name)
    return pa.Table.from_pylist([{f: r.get(f) for f in schema.names} for r in rows], schema=schema)

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


def _rows(i: int, clip: SpriteClip, frames: int, hw, fps: float, source: Path, video: int,
          start_s: float) -> dict[str, list[dict]]:
    end_s = start_s + frames / fps
    key = f"v{video:04d}:{int(1000 * start_s)}-{int(1000 * end_s)}"
    caption = f"a {clip.word} moves {'right' if clip.direction > 0 else 'left'} over a floor"
    start = caption.index(clip.word)
    background = np.full((hw[0], hw[1], 3), BACKGROUND, dtype=np.uint8)
    return {
        "clips": [{"clip_key": key, "video_id": f"v{video:04d}", "input_key": str(i), "source": str(source),
                   "caption": caption, "start_s": start_s, "end_s": end_s, "fps": fps,
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


def write_sources(root: Path, clips: list[SpriteClip], frames: int, hw, fps: float,
                  clips_per_source: int) -> list[Path]:
    """Source videos, each the consecutive renders of `clips_per_source` clips, with a keyframe
    at each clip's start (where an encoder puts one at a scene cut: a shot boundary)."""
    from curation.synthetic import write_video

    sources = []
    for video, first in enumerate(range(0, len(clips), clips_per_source)):
        group = clips[first : first + clips_per_source]
        name = f"clip{first:04d}.mp4" if clips_per_source == 1 else f"source{video:04d}.mp4"
        sources.append(write_video(np.concatenate([render(c, frames, hw) for c in group]), root / "videos" / name,
                                   fps=fps, gop=frames if clips_per_source > 1 else None))
    return sources


def write_sprite_dataset(root, clips: list[SpriteClip], frames: int = 9, hw=(32, 32), fps: float = 24.0,
                         shard_size: int = 4, clips_per_source: int = 1) -> Path:
    """A committed dataset (`_SUCCESS`) with one clip per SpriteClip, `shard_size` per shard.
    `clips_per_source` > 1: clips are consecutive spans of shared source videos, and a
    source's clips share a shard, as curation writes them (a manifest row's shots)."""
    if shard_size % clips_per_source:
        raise ValueError(f"shard_size {shard_size} must be a multiple of clips_per_source {clips_per_source}")
    root = Path(root)
    sources = write_sources(root, clips, frames, hw, fps, clips_per_source)
    shards = []
    for shard, first in enumerate(range(0, len(clips), shard_size)):
        tables: dict[str, list[dict]] = {}
        for i in range(first, min(first + shard_size, len(clips))):
            video, span = divmod(i, clips_per_source)
            for name, rows in _rows(i, clips[i], frames, hw, fps, sources[video], video, span * frames / fps).items():
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

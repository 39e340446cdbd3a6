"""video2dataset output folders (the `files` layout: video + `.txt` caption + `.json`)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa

from curation.manifest.rows import _rows
from model.media import is_video_file


def _v2d_shards(folder: Path) -> list[Path]:
    """Shard folders (or the folder itself) holding video2dataset `files` samples."""
    candidates = sorted(p for p in folder.iterdir() if p.is_dir()) + [folder]
    shards = []
    for shard in candidates:
        if any(is_video_file(p) or (p.suffix == ".json" and p.stem.isdigit())
               for p in shard.iterdir()):
            shards.append(shard)
    return shards


def _read_v2d(path: Path, fmt: str, base: Path) -> Iterator[pa.Table]:
    for shard in _v2d_shards(path):
        files: dict[str, dict[str, Path]] = {}
        for p in shard.iterdir():
            kind = "video" if is_video_file(p) else p.suffix.lower()
            if kind in ("video", ".txt", ".json"):
                files.setdefault(p.stem, {})[kind] = p
        samples = [_v2d_sample(shard, stem, files[stem]) for stem in sorted(files)]
        if not samples:
            continue
        ids, videos, captions, problem, detail = (list(col) for col in zip(*samples))
        yield _rows(len(samples), base, id=pa.array(ids, pa.string()),
                    video=pa.array(videos, pa.string()), caption=pa.array(captions, pa.binary()),
                    problem=problem, detail=detail)


def _v2d_sample(shard: Path, stem: str, files: dict[str, Path]) -> tuple:
    """(id, video, caption bytes, problem, detail) of one video2dataset sample."""
    meta: dict[str, Any] = {}
    if ".json" in files:
        try:
            meta = json.loads(files[".json"].read_text(encoding="utf-8", errors="replace"))
        except ValueError:
            meta = {}
    caption = files[".txt"].read_bytes() if ".txt" in files else None
    if caption is None and isinstance(meta.get("caption"), str):
        caption = meta["caption"].encode("utf-8")
    video = files.get("video", shard / f"{stem}.mp4")
    problem = detail = None
    if "video" not in files:
        status, error = meta.get("status") or "no video file", meta.get("error_message")
        problem = "missing_file"
        detail = f"video2dataset sample {stem} has no video ({status}" + (
            f": {error})" if error else ")")
    return str(meta.get("key") or stem), str(video), caption, problem, detail

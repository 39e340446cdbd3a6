"""Stable keys (README "Keys"): video id, clip key, and child keys that extend the clip key."""
import hashlib
import math


def video_id(manifest_id: str | None, source: str) -> str:
    """The manifest `id` when given, else a short hash of the path or URL."""
    if manifest_id not in (None, ""):
        return str(manifest_id)
    return hashlib.sha1(source.encode("utf-8", "surrogateescape")).hexdigest()[:12]


def to_ms(seconds: float) -> int:
    return int(math.floor(seconds * 1000 + 0.5))  # half-up, so keys never depend on round-half-even


def clip_key(vid: str, start_s: float, end_s: float) -> str:
    return f"{vid}:{to_ms(start_s)}-{to_ms(end_s)}"


def child_key(clip: str, *parts: object) -> str:
    """`<clip key>/<entity>/<frame>`; spaces in words become underscores, as in the benchmark."""
    return "/".join([clip, *(str(p).replace(" ", "_").replace("/", "_") for p in parts)])


def frame_part(frame_index: int) -> str:
    return f"frame{frame_index}"

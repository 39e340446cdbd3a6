"""Stable keys (README "Keys"): video id, input key, clip key, and child keys that extend the clip key."""
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


def times_key(vid: str, start: float | None, end: float | None) -> str:
    """The clip key for given times; an open end (until the video ends) is written `end`."""
    if start is not None and end is not None and math.isfinite(start) and math.isfinite(end):
        return clip_key(vid, start, end)
    s = "0" if start is None or not math.isfinite(start) else str(to_ms(start))
    e = "end" if end is None or not math.isfinite(end) else str(to_ms(end))
    return f"{vid}:{s}-{e}"


def input_key(row: dict) -> str:
    """The key of one manifest row (`curation.manifest` columns), computable before ingest.

    A row the manifest reader could not interpret (`problem` set) is keyed by its position,
    `<video id>#row<n>`, so it never collides with the valid row it was meant to be.
    """
    vid = video_id(row.get("id"), row.get("video") or "")
    start, end = row.get("start"), row.get("end")
    if row.get("problem"):
        return f"{vid}#row{row.get('input_row')}"
    if start is None and end is None:
        return vid
    return times_key(vid, start, end)

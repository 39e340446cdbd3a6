"""Which strings are URLs and which files are videos: the one definition that the curation
pipeline (manifests, ingest) and the model's video readers share.

No third-party imports, so `curation` can use it without pulling in torch.
"""
from __future__ import annotations

import re
from pathlib import Path

# An RFC 3986 scheme followed by "://": http(s)://, s3://, gs://, file://, ...
URL_RE = r"^[A-Za-z][A-Za-z0-9+.\-]*://"
_URL = re.compile(URL_RE)
# Containers FFmpeg (PyAV) decodes that video corpora ship in.
VIDEO_SUFFIXES = (".mp4", ".webm", ".mkv", ".mov", ".avi", ".m4v")


def is_url(text: str) -> bool:
    return bool(_URL.match(text))


def is_video_file(path: str | Path) -> bool:
    """A video container by its (case-insensitive) extension."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES

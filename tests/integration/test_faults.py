"""Crashes at every publication step, and a full disk, with real processes (issue 9 item 6).

`ALCHEMIST_FAULT=<point>` makes `alchemist curate` exit on the spot (`os._exit`, no cleanup)
at a named point of the publication; the same command run again resumes. After each crash the
resumed dataset equals an uninterrupted run's, has no duplicate keys, and a plain DuckDB glob
over `<table>/*.parquet` counts exactly what `_SUCCESS` says. Runs are in-process (`--no-ray`)
to stay fast; the Ray path shares the publication code.
"""
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from curation import warehouse
from curation.faults import FAULT_ENV, FAULT_EXIT_CODE, POINTS
from curation.inspect import contract_violations
from curation.synthetic import moving_object_clip, write_video
from warehouse_schemas import registry

pytestmark = pytest.mark.slow

CONFIG = """
shard_size: 1
skip: [grounding, faces, background]
"""


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """A missing file first (shard 0 writes only small tables), then two videos and a repeat."""
    root = tmp_path_factory.mktemp("fault_inputs")
    lines = ["video,caption", "gone.mp4,A dog runs."]
    for seed in range(2):
        frames, _ = moving_object_clip(seed, 36, (96, 128))
        write_video(frames, root / f"dog{seed}.mp4", fps=24)
        lines.append(f"dog{seed}.mp4,A small dog runs across a brick floor.")
    lines.append("dog0.mp4,A small dog runs across a brick floor.")
    (root / "manifest.csv").write_text("\n".join(lines) + "\n")
    (root / "config.yaml").write_text(CONFIG)
    return root


def _curate(inputs: Path, out: Path, fault: str | None = None, file_limit: int | None = None):
    env = {k: v for k, v in os.environ.items() if k != FAULT_ENV}
    env["PYTHONPATH"] = os.getcwd()
    if fault:
        env[FAULT_ENV] = fault

    def limit_file_size():
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, file_limit))

    return subprocess.run([sys.executable, "-m", "curation.cli", "curate", "--no-ray",
                           "--manifest", str(inputs / "manifest.csv"), "--out", str(out),
                           "--config", str(inputs / "config.yaml")],
                          capture_output=True, text=True, timeout=600, env=env,
                          preexec_fn=limit_file_size if file_limit else None)


@pytest.fixture(scope="module")
def reference(inputs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fault_reference") / "ds"
    result = _curate(inputs, out)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def _sorted(table):
    return table.sort_by([(c, "ascending") for c in table.column_names
                          if c in ("clip_key", "key", "name", "stage", "ref_key", "frame_key", "video_id")])


def _assert_same_as_reference(out: Path, reference: Path) -> None:
    counts = json.loads((out / "_SUCCESS").read_text())["counts"]
    assert contract_violations(out) == []  # includes: no duplicate keys in any table
    for name in registry.TABLES:
        got, want = warehouse.read_table(out, name), warehouse.read_table(reference, name)
        assert _sorted(got).equals(_sorted(want)), f"table {name} differs from an uninterrupted run's"
        glob = f"{out}/{name}/*.parquet"
        assert duckdb.sql(f"SELECT count(*) FROM '{glob}'").fetchall() == [(counts[name],)], name
    assert not (out / "_staging").exists()


def _state_after(point: str, out: Path) -> None:
    """What the crash left behind: exactly the steps before the point."""
    first_tables = sorted(name for name in registry.TABLES if warehouse.table_path(out, name, 0).exists())
    if point == "after_first_table":
        assert len(first_tables) == 1 and not warehouse.committed_shards(out)
    elif point == "before_done_marker":
        assert first_tables == sorted(registry.TABLES) and not warehouse.committed_shards(out)
    else:
        assert warehouse.committed_shards(out) == [0, 1, 2, 3] and not (out / "_SUCCESS").exists()


@pytest.mark.parametrize("point", POINTS)
def test_a_crash_at_each_publication_step_resumes_to_the_same_dataset(point, inputs, reference, tmp_path):
    out = tmp_path / "ds"
    crashed = _curate(inputs, out, fault=point)
    assert crashed.returncode == FAULT_EXIT_CODE, crashed.stderr[-3000:]
    _state_after(point, out)
    markers = {p: p.stat().st_mtime_ns for p in out.glob("_done/*.json")}
    resumed = _curate(inputs, out)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert all(p.stat().st_mtime_ns == t for p, t in markers.items()), "a committed shard was redone"
    _assert_same_as_reference(out, reference)


def test_a_full_disk_fails_with_one_line_and_keeps_committed_shards(inputs, reference, tmp_path):
    small = max(warehouse.table_path(reference, name, 0).stat().st_size for name in registry.TABLES)
    large = max(warehouse.table_path(reference, name, 1).stat().st_size for name in registry.TABLES)
    limit = 2 * small  # shard 0 (one rejection) fits; the frames of shard 1 do not
    assert large > limit
    out = tmp_path / "ds"
    full = _curate(inputs, out, file_limit=limit)
    assert full.returncode == 2, full.stderr[-3000:]
    error = [line for line in full.stderr.splitlines() if line.startswith("alchemist: error:")]
    assert len(error) == 1 and "File too large" in error[0] and "re-run" in error[0]
    assert "Traceback" not in full.stderr
    assert warehouse.committed_shards(out) == [0]
    assert warehouse.read_table(out, "rejections").num_rows == 1  # shard 0 is intact and readable
    assert not any(warehouse.table_path(out, name, 1).exists() for name in registry.TABLES)
    resumed = _curate(inputs, out)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    _assert_same_as_reference(out, reference)

"""A killed run resumes: committed shards are skipped (not recomputed) and the final tables
equal an uninterrupted run's, with no duplicate keys (issue 2 "shard commit")."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from curation import warehouse
from curation.inspect import contract_violations
from curation.synthetic import moving_object_clip, write_video
from warehouse_schemas import registry

pytestmark = pytest.mark.slow

CONFIG = """
shard_size: 1
skip: [grounding, faces, background]
"""


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume_inputs")
    lines = ["video,caption"]
    for seed in range(4):
        frames, _ = moving_object_clip(seed, 36, (96, 128))
        write_video(frames, root / f"dog{seed}.mp4", fps=24)
        lines.append(f"dog{seed}.mp4,A small dog runs across a brick floor.")
    (root / "manifest.csv").write_text("\n".join(lines) + "\n")
    (root / "config.yaml").write_text(CONFIG)
    return root


def _curate_cmd(manifest: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "curation.cli", "curate", "--manifest", str(manifest / "manifest.csv"),
            "--out", str(out), "--config", str(manifest / "config.yaml")]


def _run(manifest, out):
    result = subprocess.run(_curate_cmd(manifest, out), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _kill_after_first_shard(manifest, out):
    proc = subprocess.Popen(_curate_cmd(manifest, out), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    done = out / "_done" / "part-00000.json"
    deadline = time.monotonic() + 600
    while not done.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert done.exists(), "the run ended before committing its first shard"


def _sorted(table):
    key = table.schema.field(0).name
    return table.sort_by([(key, "ascending")] + ([("name", "ascending")] if "name" in table.column_names else []))


def test_killed_run_resumes_to_the_same_tables(manifest, tmp_path, ray_session):
    interrupted, reference = tmp_path / "interrupted", tmp_path / "reference"
    _kill_after_first_shard(manifest, interrupted)
    assert not (interrupted / "_SUCCESS").exists()
    first = interrupted / "clips" / "part-00000.parquet"
    stamp = first.stat().st_mtime_ns
    marker = (interrupted / "_done" / "part-00000.json").stat().st_mtime_ns

    _run(manifest, interrupted)
    assert first.stat().st_mtime_ns == stamp, "a committed shard was recomputed"
    assert (interrupted / "_done" / "part-00000.json").stat().st_mtime_ns == marker
    _run(manifest, reference)

    assert warehouse.committed_shards(interrupted) == [0, 1, 2, 3]
    assert contract_violations(interrupted) == []
    for name in registry.TABLES:
        got, want = warehouse.read_table(interrupted, name), warehouse.read_table(reference, name)
        assert _sorted(got).equals(_sorted(want)), f"table {name} differs after resume"
    assert not list(interrupted.glob("_staging/*"))

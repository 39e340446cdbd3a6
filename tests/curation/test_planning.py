"""Planning: exact re-plans, dataset-wide duplicate marking, and resume refusing drift."""
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from curation import fingerprint, warehouse
from curation.config import ConfigError, RunConfig
from curation.inspect import balance, contract_violations
from curation.runner import plan

# Only ingest runs, on missing files: a whole `alchemist curate` takes about a second.
INGEST_ONLY = "skip: [shots, motion, entities, frames, grounding, faces, background]\nshard_size: {}\n"


def _manifest(path: Path, videos: list[str]) -> Path:
    path.write_text("video,caption\n" + "".join(f"{v},A dog runs.\n" for v in videos))
    return path


def _commit_one(out: Path) -> None:
    (out / "_done").mkdir(exist_ok=True)
    (out / "_done" / "part-00000.json").write_text('{"shard": 0, "counts": {}}')


def _curate(tmp_path: Path, manifest: Path, out: Path, shard_size: int, *extra: str):
    config = tmp_path / "config.yaml"
    config.write_text(INGEST_ONLY.format(shard_size))
    return subprocess.run([sys.executable, "-m", "curation.cli", "curate", "--no-ray", "--manifest", str(manifest),
                           "--out", str(out), "--config", str(config), *extra],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": os.getcwd()})


def test_replanning_before_any_commit_leaves_exactly_the_new_plan(tmp_path):
    manifest = _manifest(tmp_path / "m.csv", [f"v{i}.mp4" for i in range(5)])
    out = tmp_path / "ds"
    assert plan(manifest, out, RunConfig(shard_size=2)) == [0, 1, 2]
    assert plan(manifest, out, RunConfig(shard_size=5)) == [0]
    assert sorted(p.name for p in (out / "_plan").glob("part-*")) == ["part-00000.parquet"]
    assert balance(out)["manifest_rows"] == 5


def test_duplicates_are_marked_across_the_whole_manifest(tmp_path):
    videos = [f"v{i}.mp4" for i in range(12)]
    videos[9] = videos[1]  # same input key, two shards apart
    videos[11] = videos[1]
    manifest = _manifest(tmp_path / "m.csv", videos)
    out = tmp_path / "ds"
    plan(manifest, out, RunConfig(shard_size=4))
    rows = [r for s in range(3) for r in pq.read_table(out / "_plan" / f"part-{s:05d}.parquet").to_pylist()]
    marked = {r["input_row"]: r["problem_detail"] for r in rows if r["problem"] == "duplicate_input"}
    assert sorted(marked) == [9, 11]
    assert all("first appears at manifest row 1" in d for d in marked.values())


def test_cli_rejects_a_late_duplicate_once_and_the_dataset_balances(tmp_path):
    videos = [f"v{i}.mp4" for i in range(6)] + ["v0.mp4"]
    out = tmp_path / "ds"
    result = _curate(tmp_path, _manifest(tmp_path / "m.csv", videos), out, 2)
    assert result.returncode == 0, result.stderr
    rejections = warehouse.read_table(out, "rejections").to_pylist()
    duplicates = [r for r in rejections if r["reason"] == "duplicate_input"]
    assert len(duplicates) == 1 and duplicates[0]["key"].endswith("#row6")
    assert sum(r["reason"] == "missing_file" for r in rejections) == 6
    assert contract_violations(out) == []


def test_resume_refuses_a_rewritten_manifest_but_not_a_touched_one(tmp_path):
    manifest = _manifest(tmp_path / "m.csv", ["a.mp4", "b.mp4"])
    out = tmp_path / "ds"
    plan(manifest, out, RunConfig(shard_size=1))
    _commit_one(out)
    os.utime(manifest, (1, 1))  # only the mtime changes: the same dataset
    assert plan(manifest, out, RunConfig(shard_size=1)) == [0, 1]
    _manifest(manifest, ["a.mp4", "c.mp4"])  # same size, other content
    with pytest.raises(ConfigError, match=r"manifest.sha256: .* -> "):
        plan(manifest, out, RunConfig(shard_size=1))


def test_resume_refuses_other_code_and_other_resolved_settings(tmp_path, monkeypatch):
    from curation import profiles

    manifest = _manifest(tmp_path / "m.csv", ["a.mp4"])
    out = tmp_path / "ds"
    plan(manifest, out, RunConfig())
    _commit_one(out)
    with pytest.raises(ConfigError, match=r"settings.stages.frames.max_side: \(none\) -> 64"):
        plan(manifest, out, RunConfig(stages={"frames": {"max_side": 64}}))
    # a changed profile default is a change too, though the config file did not change
    offline = {**profiles.PROFILES["offline"], "ingest": {**profiles.PROFILES["offline"]["ingest"], "min_side": 17}}
    monkeypatch.setitem(profiles.PROFILES, "offline", offline)
    with pytest.raises(ConfigError, match=r"settings.stages.ingest.min_side: 16 -> 17"):
        plan(manifest, out, RunConfig())
    monkeypatch.undo()
    monkeypatch.setattr(fingerprint, "code_version", lambda: "0.1.0+other")
    with pytest.raises(ConfigError, match=r"code_version: .* -> 0.1.0\+other"):
        plan(manifest, out, RunConfig())
    # scaling a stage's actors does not change its rows: not drift
    monkeypatch.undo()
    assert plan(manifest, out, RunConfig(stages={"motion": {"resources": {"actors": 3}}})) == [0]


def test_cli_new_version_starts_a_new_dataset_directory(tmp_path):
    manifest = _manifest(tmp_path / "m.csv", ["a.mp4", "b.mp4"])
    out = tmp_path / "ds"
    assert _curate(tmp_path, manifest, out, 1).returncode == 0
    refused = _curate(tmp_path, manifest, out, 2)
    assert refused.returncode == 2 and "settings.shard_size: 1 -> 2" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    again = _curate(tmp_path, manifest, out, 2, "--new-version")
    assert again.returncode == 0, again.stderr
    assert warehouse.committed_shards(tmp_path / "ds-v2") == [0]
    assert warehouse.committed_shards(out) == [0, 1]  # the first version is untouched
    assert _curate(tmp_path, manifest, out, 2, "--new-version").returncode == 0  # resumes ds-v2
    assert not (tmp_path / "ds-v3").exists()


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=repo, check=True,
                   capture_output=True)


def test_each_dirty_tree_is_its_own_code_version(tmp_path):
    _git(tmp_path, "init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "one")
    clean = fingerprint.code_version(tmp_path)
    (tmp_path / "a.py").write_text("x = 2\n")
    edit_one = fingerprint.code_version(tmp_path)
    (tmp_path / "a.py").write_text("x = 3\n")
    edit_two = fingerprint.code_version(tmp_path)
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "b.py").write_text("y = 1\n")  # an untracked file counts too
    untracked = fingerprint.code_version(tmp_path)
    (tmp_path / "b.py").unlink()
    assert len({clean, edit_one, edit_two, untracked}) == 4 and "dirty" not in clean
    assert fingerprint.code_version(tmp_path) == clean

"""A dataset's identity: what its rows were computed from (issue 9 "resume that detects drift").

Three parts, stored in `_plan/plan.json` when a dataset is planned:
  manifest      its size and a SHA-256 of its content (never its mtime: a touched manifest
                with the same bytes is the same input);
  code_version  package version + git commit; a dirty tree adds a hash of its changes, so
                two different uncommitted edits are two versions;
  settings      the fully resolved run settings: profile, shard size, undesirable filter,
                skipped stages and every stage's settings after profile defaults and overrides
                (a changed profile default is a change). `resources` are left out: scaling a
                stage's actors or batch size does not change its rows.

Resume, retune and scheduled runs compare fingerprints with `drift`.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
from pathlib import Path

from curation.config import RunConfig
from curation.stage import Stage

_CHUNK = 1 << 20  # read manifests 1 MiB at a time: memory stays flat for a multi-GB manifest
_SMALL_FILE = 1 << 20  # our choice: in a video2dataset folder, files under this are hashed
_GIT_TIMEOUT_S = 10


def of_run(manifest: str | Path, config: RunConfig, stages: list[Stage]) -> dict:
    return {"manifest": manifest_identity(manifest), "code_version": code_version(),
            "settings": resolved_settings(config, stages)}


def manifest_identity(path: str | Path) -> dict:
    """Size and content hash of a manifest file; for a video2dataset folder, of its files
    (names and sizes of all, content of the small metadata files, not of the videos)."""
    from curation.manifest import ManifestError

    if not Path(path).exists():
        raise ManifestError(f"manifest {path} does not exist; check the path")
    path = Path(path).resolve()
    digest = hashlib.sha256()
    if path.is_dir():
        size = 0
        for f in sorted(p for p in path.rglob("*") if p.is_file()):
            n = f.stat().st_size
            size += n
            digest.update(f"{f.relative_to(path)}\0{n}\0".encode())
            if n < _SMALL_FILE:
                digest.update(f.read_bytes())
    else:
        size = path.stat().st_size
        with open(path, "rb") as f:
            while block := f.read(_CHUNK):
                digest.update(block)
    return {"path": str(path), "size": size, "sha256": digest.hexdigest()}


def code_version(checkout: Path | None = None) -> str:
    """Package version + git commit; a dirty checkout adds a hash of its diff and untracked files."""
    from importlib.metadata import version

    package = version("alchemist")
    here = checkout or Path(__file__).parent
    sha = _git(here, "describe", "--always", "--abbrev=9")
    if not sha:
        return package
    changes = _git(here, "diff", "HEAD", "--binary") + _untracked(here)
    if not changes:
        return f"{package}+{sha}"
    return f"{package}+{sha}.dirty-{hashlib.sha256(changes.encode('utf-8', 'surrogateescape')).hexdigest()[:9]}"


def _git(cwd: Path, *args: str) -> str:
    try:
        result = subprocess.run(["git", *args], capture_output=True, text=True, cwd=cwd,
                                timeout=_GIT_TIMEOUT_S, errors="surrogateescape")
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return result.stdout.strip() if result.returncode == 0 else ""


def _untracked(cwd: Path) -> str:
    top = _git(cwd, "rev-parse", "--show-toplevel")
    names = _git(cwd, "ls-files", "--others", "--exclude-standard", "--full-name", ":/").splitlines()
    parts = []
    for name in sorted(names):
        file = Path(top) / name
        content = file.read_bytes() if file.is_file() and file.stat().st_size < _SMALL_FILE else b""
        parts.append(f"{name}\0{hashlib.sha256(content).hexdigest()}")
    return "\n".join(parts)


def resolved_settings(config: RunConfig, stages: list[Stage]) -> dict:
    """Every setting that decides the rows; JSON-plain so it compares equal after a round trip."""
    stage_settings = {}
    for stage in stages:
        fields = {f.name: getattr(stage, f.name) for f in dataclasses.fields(stage) if f.name != "resources"}
        stage_settings[stage.name] = fields
    run = {"profile": config.profile, "shard_size": config.shard_size,
           "undesirable_filter": config.undesirable_filter, "skip": sorted(config.skip),
           "stages": stage_settings}
    return json.loads(json.dumps(run, default=str, sort_keys=True))


def drift(old: dict, new: dict) -> list[str]:
    """What differs between two fingerprints, one `key: old -> new` line per leaf."""
    old_flat, new_flat = _flatten(old), _flatten(new)
    return [f"{k}: {_short(old_flat.get(k))} -> {_short(new_flat.get(k))}"
            for k in sorted(set(old_flat) | set(new_flat)) if old_flat.get(k) != new_flat.get(k)]


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _short(value: object, limit: int = 40) -> str:
    text = "(none)" if value is None else json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[: limit - 1] + "…"

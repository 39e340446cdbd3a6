"""Dataset versions keyed by their manifest's fingerprint, recorded in the warehouse.

`<warehouse>/<dataset>/_versions/<sha256>.json` says that the manifest with that content
was published once, where (`<warehouse>/<dataset>/<sha256[:16]>/`) and with which counts.
The record is created with O_EXCL, so a version is published exactly once however often a
scheduled run retries or re-lists the same file; the scheduler's own database is not needed
to know what is done (`curate_incoming`, issue 13).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from curation.fingerprint import manifest_identity

VERSIONS_DIR = "_versions"
MANIFEST_SUFFIXES = (".csv", ".tsv", ".jsonl", ".parquet")  # what a watched folder picks up
VERSION_DIGITS = 16  # hex digits of the fingerprint naming a version's directory


def manifest_key(path: str | Path) -> str:
    return manifest_identity(path)["sha256"]


def version_dir(warehouse: str | Path, dataset: str, key: str) -> Path:
    return Path(warehouse).resolve() / dataset / key[:VERSION_DIGITS]


def published(warehouse: str | Path, dataset: str) -> dict[str, dict]:
    """Every recorded version of `dataset`: fingerprint -> record."""
    folder = Path(warehouse) / dataset / VERSIONS_DIR
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))} if folder.exists() else {}


def record(warehouse: str | Path, dataset: str, key: str, entry: dict) -> bool:
    """Record one published version; False (and nothing written) if it already was."""
    folder = Path(warehouse) / dataset / VERSIONS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{key}.json.tmp"
    tmp.write_text(json.dumps({"fingerprint": key, **entry}, indent=1, sort_keys=True))
    try:
        os.link(tmp, folder / f"{key}.json")  # atomic and exclusive: the first publisher wins
    except FileExistsError:
        return False
    finally:
        tmp.unlink()
    return True


def new_manifests(incoming: str | Path, warehouse: str | Path, dataset: str) -> list[dict]:
    """Manifest files in `incoming` whose content has no published version, oldest first.

    Writers drop a file under another suffix (e.g. `.part`) and rename it into place, so a
    half-written manifest is never picked up. Two files with the same content are one version.
    """
    folder = Path(incoming)
    files = sorted((p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in MANIFEST_SUFFIXES),
                   key=lambda p: (p.stat().st_mtime, p.name)) if folder.exists() else []
    done, found = published(warehouse, dataset), {}
    for path in files:
        key = manifest_key(path)
        if key not in done and key not in found:
            found[key] = {"manifest": str(path.resolve()), "key": key, "version": key[:VERSION_DIGITS],
                          "out": str(version_dir(warehouse, dataset, key))}
    return list(found.values())

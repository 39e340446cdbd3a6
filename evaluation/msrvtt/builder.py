"""`alchemist bench build`: MSR-VTT-style videos + captions -> the benchmark (paper 4.1).

1. Curate: the manifest (any format `alchemist curate` reads: video, caption, optional
   start/end and id) goes through the curation stages with TransNetV2 in split mode, so every
   shot of a long video becomes a candidate clip annotated like training data (entity words,
   5/50/95% frames, segmented references, face crops, clean background). The curated Parquet
   tables stay in `<out>/curated/`.
2. Select one clip per source video (paper 4.1: "we select only one clip from each long
   video"). Rule (ours; the paper leaves it open): among the video's shots that passed every
   stage — accepted into `clips` with no entity- or background-level rejection and with all
   three frames, a reference for every subject and object word and a background — keep the
   longest; ties go to the earliest start. A video with none gets a line in the report.
3. Write the release's layout (`layout.py`), `samples.parquet` and every mode's lists.
   `keep` (the review page's export) restricts the written samples to the kept names.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from curation.errors import OperatorError
from evaluation.msrvtt import layout, modes

CURATED = "curated"


def benchmark_config(profile: str | None = None, config_path: str | None = None):
    """The run config with the shot stage in split mode (and everything else as asked)."""
    from curation.config import load_config

    config = load_config(config_path, profile)
    config.stages["shots"] = {**config.stages.get("shots", {}), "mode": "split"}
    return config


def write_config(out: Path, profile: str | None = None, config_path: str | None = None) -> Path:
    """Save the benchmark's run config as YAML (the DAG passes it to the curation tasks)."""
    import yaml

    out.mkdir(parents=True, exist_ok=True)
    path = out / "bench_config.yaml"
    path.write_text(yaml.safe_dump(benchmark_config(profile, config_path).to_dict()))
    return path


def curate(manifest: Path, out: Path, profile: str | None = None, config_path: str | None = None,
           use_ray: bool = False) -> dict:
    from curation.runner import curate as run_curation

    return run_curation(manifest, Path(out) / CURATED, benchmark_config(profile, config_path), use_ray=use_ray)


# --- selection ------------------------------------------------------------------------------------


def _table(curated: Path, name: str) -> list[dict]:
    from curation.warehouse import read_table

    return read_table(curated, name).to_pylist()


def complete_clips(curated: Path) -> dict[str, dict]:
    """clip_key -> clip row, for clips that passed every stage (see the module docstring)."""
    rejected = {r["clip_key"] for r in _table(curated, "rejections") if r["clip_key"]}
    frames = {}
    for r in _table(curated, "frames"):
        frames.setdefault(r["clip_key"], set()).add(r["frame_index"])
    words = {}
    for e in _table(curated, "entities"):
        if e["type"] in ("subject", "object"):
            words.setdefault(e["clip_key"], set()).add(e["word"])
    referenced = {}
    for r in _table(curated, "references"):
        referenced.setdefault(r["clip_key"], set()).add(r["word"])
    backgrounds = {r["clip_key"] for r in _table(curated, "backgrounds")}
    return {c["clip_key"]: c for c in _table(curated, "clips")
            if c["clip_key"] not in rejected and frames.get(c["clip_key"]) == {1, 2, 3}
            and words.get(c["clip_key"]) and words[c["clip_key"]] <= referenced.get(c["clip_key"], set())
            and c["clip_key"] in backgrounds}


def select_one_per_video(clips: dict[str, dict]) -> dict[str, dict]:
    """video_id -> its longest complete clip (ties: earliest start)."""
    chosen: dict[str, dict] = {}
    for clip in sorted(clips.values(), key=lambda c: (c["video_id"], -(c["end_s"] - c["start_s"]), c["start_s"])):
        chosen.setdefault(clip["video_id"], clip)
    return chosen


# --- writing --------------------------------------------------------------------------------------


def read_keep(path: Path | None) -> set[str] | None:
    """The review page's export: one sample name per line, `#` comments."""
    if path is None:
        return None
    path = Path(path)
    if not path.exists():
        raise OperatorError(f"--keep {path} does not exist; export it from `alchemist bench review`")
    return {line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")}


def _rows_by_clip(curated: Path, name: str) -> dict[str, list[dict]]:
    rows: dict[str, list[dict]] = {}
    for r in _table(curated, name):
        rows.setdefault(r["clip_key"], []).append(r)
    return rows


def write_sample(folder: Path, clip: dict, tables: dict[str, dict[str, list[dict]]]) -> dict:
    from curation.imaging import decode_png
    from curation.video_io import decode_clip

    key = clip["clip_key"]
    tmp = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    entities = tables["entities"].get(key, [])
    tags = {t: [e["word"] for e in entities if e["type"] == t] for t in layout.ENTITY_TYPES}
    layout.write_text_files(tmp, clip["caption"], tags)
    frames, _ = decode_clip(clip["source"], clip["start_s"], clip["end_s"])
    layout.write_video_file(tmp, frames, clip["fps"] or len(frames) / (clip["end_s"] - clip["start_s"]))
    for f in tables["frames"].get(key, []):
        layout.write_rgb(tmp / layout.frame_name(f["frame_index"]), decode_png(f["png"]))
    for r in tables["references"].get(key, []):
        (tmp / layout.ref_name(r["word"], r["frame_index"])).write_bytes(r["rgba_png"])
    for r in tables["faces"].get(key, []):
        (tmp / layout.ref_name(r["word"], r["frame_index"], face=True)).write_bytes(r["png"])
    for r in tables["backgrounds"].get(key, []):
        layout.write_rgb(tmp / layout.BACKGROUND, decode_png(r["png"]))
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return {"sample": folder.name, "source": clip["source"], "clip_key": key, "start_s": clip["start_s"],
            "end_s": clip["end_s"], "caption": clip["caption"], "subjects": tags["subject"],
            "objects": tags["object"], "backgrounds": tags["background"], "origin": "build"}


def write_release(out: Path, keep: set[str] | None = None) -> dict:
    """Select and write the samples from `<out>/curated`; returns the build report."""
    out = Path(out)
    curated = out / CURATED
    inputs = {r["video_id"] for r in _table(curated, "videos")}
    chosen = select_one_per_video(complete_clips(curated))
    names = {vid: _sample_name(vid) for vid in chosen}
    wanted = {vid: c for vid, c in chosen.items() if keep is None or names[vid] in keep}
    tables = {name: _rows_by_clip(curated, name) for name in ("entities", "frames", "references", "faces", "backgrounds")}
    samples = out / layout.SAMPLES_DIR
    samples.mkdir(parents=True, exist_ok=True)
    rows = [write_sample(samples / names[vid], clip, tables) for vid, clip in sorted(wanted.items())]
    for stale in set(p.name for p in samples.iterdir() if p.is_dir()) - {r["sample"] for r in rows}:
        shutil.rmtree(samples / stale)  # dropped in review, or no longer selected
    layout.write_index(out, rows)
    report = {"samples": len(rows), "modes": modes.write_modes(out),
              "videos_without_clip": sorted(inputs - set(chosen)),
              "dropped_in_review": sorted(names[v] for v in chosen if v not in wanted),
              "kept_but_unknown": sorted((keep or set()) - set(names.values())),
              "clips": {names[v]: c["clip_key"] for v, c in wanted.items()}}
    (out / "build_report.json").write_text(json.dumps(report, indent=1))
    return report


def _sample_name(video_id: str) -> str:
    """A folder name from the video id (the manifest `id`, e.g. MSR-VTT's video7020)."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in video_id)


def build(manifest: Path, out: Path, profile: str | None = "offline", config_path: str | None = None,
          keep_path: Path | None = None, use_ray: bool = False) -> dict:
    keep = read_keep(keep_path)  # before any work: a bad path is an operator mistake
    curate(manifest, out, profile, config_path, use_ray)
    return write_release(out, keep)


def shot_lengths(out: Path) -> dict[str, list[float]]:
    """video_id -> the durations of its accepted clips (for reports and tests)."""
    lengths: dict[str, list[float]] = {}
    for c in _table(Path(out) / CURATED, "clips"):
        lengths.setdefault(c["video_id"], []).append(float(np.round(c["end_s"] - c["start_s"], 3)))
    return lengths

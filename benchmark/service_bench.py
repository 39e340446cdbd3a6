"""The fixed overhead of curating through Airflow on the running service (issue 13).

The same 64-clip offline job as the warm-stage benchmark (benchmark.scale_bench), side by
side in one run: `alchemist curate` in-process on a local Ray, then the `curate` DAG on a
freshly started `make up` service (its own state directory and ports), timed from the REST
trigger to the run's success. The difference is Airflow's scheduling, task start-up and the
report/notes the commit writes.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmark.scale_bench import WARM_CLIPS, build_clip_manifest

RUN_TIMEOUT_S = 3600


def _row(metric: str, value, unit: str, notes: str) -> dict:
    return {"benchmark": "service", "metric": metric, "value": value, "unit": unit, "notes": notes}


def _in_process(manifest: Path, out: Path) -> float:
    env = {k: v for k, v in os.environ.items() if k != "ALCHEMIST_RAY_ADDRESS"}
    start = time.monotonic()
    subprocess.run([sys.executable, "-m", "curation.cli", "curate", "--manifest", str(manifest), "--out", str(out),
                    "--profile", "offline", "--no-progress"], env=env, check=True, capture_output=True)
    return time.monotonic() - start


def _through_service(manifest: Path, root: Path) -> float:
    from curation.service import Layout, down, free_port, up
    from curation.service_client import ServiceApi

    layout = Layout(root, api_port=free_port(), ray_port=free_port(span=2), report_port=free_port())
    try:
        up(layout)
        api = ServiceApi(layout.url, json.loads(layout.passwords.read_text())["admin"])
        api.wait_for("/api/v2/dags/curate", lambda d: d["dag_id"] == "curate", timeout=RUN_TIMEOUT_S)
        start = time.monotonic()
        run, _ = api.run_dag("curate", {"manifest": str(manifest), "profile": "offline"}, timeout=RUN_TIMEOUT_S)
        wall = time.monotonic() - start
        if run["state"] != "success":
            raise RuntimeError(f"the curate run ended {run['state']}; see {layout.logs}")
        return wall
    finally:
        down(layout)


def run() -> list[dict]:
    folder = Path(tempfile.mkdtemp(prefix="alc-"))  # short: Ray's socket paths live below it
    try:
        manifest = build_clip_manifest(folder, WARM_CLIPS)
        local = _in_process(manifest, folder / "local")
        service = _through_service(manifest, folder / "svc")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return [
        _row(f"{WARM_CLIPS}-clip `alchemist curate` in-process", local, "s", "offline profile, local Ray"),
        _row(f"{WARM_CLIPS}-clip `curate` DAG on the running service", service, "s",
             "REST trigger to run success; LocalExecutor, shared Ray head"),
        _row("Airflow fixed overhead", service - local, "s", "service minus in-process, same run"),
    ]


if __name__ == "__main__":
    for row in run():
        print(row)

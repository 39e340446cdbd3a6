"""
### Build the MSRVTT-Personalization benchmark from MSR-VTT-style videos and captions

Runs the curation stages with TransNetV2 in split mode (one candidate clip per shot), as the
`curate` DAG does (one mapped task per shard, Ray inside), then keeps one clip per source
video (the longest that passed every stage) and writes the release's per-sample layout, our
Parquet index and every mode's conditioning lists. `keep` is the `kept.txt` exported by
`alchemist bench review`. Paper: VideoAlchemy 4.1 (arXiv:2501.06187).
"""
from __future__ import annotations

from datetime import datetime

from airflow.sdk import Param, dag, task
from airflow.sdk.exceptions import AirflowFailException


@dag(
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["alchemist", "benchmark"],
    default_args={"retries": 2},
    doc_md=__doc__,
    params={
        "manifest": Param("", type="string", description="MSR-VTT-style manifest: id, video, caption[, start, end]"),
        "out": Param("", type="string", description="benchmark directory"),
        "profile": Param("offline", enum=["offline", "lite", "full"]),
        "config": Param("", type="string", description="optional YAML run config"),
        "keep": Param("", type="string", description="optional kept.txt from bench review"),
    },
)
def build_benchmark():
    @task
    def plan(params=None) -> dict:
        from pathlib import Path

        from curation.errors import OperatorError
        from evaluation.msrvtt.builder import CURATED, write_config
        from operators import curation_tasks

        out = Path(params["out"])
        try:
            config = write_config(out, params["profile"], params["config"] or None)
            shards = curation_tasks.plan(params["manifest"], str(out / CURATED), None, str(config))
        except OperatorError as e:  # a retry cannot fix a bad config or a missing file
            raise AirflowFailException(str(e)) from None
        return {"out": str(out), "curated": str(out / CURATED), "shards": shards}

    @task
    def shard_args(planned: dict) -> list[dict]:
        return [{"out": planned["curated"], "shard": s} for s in planned["shards"]]

    @task(max_active_tis_per_dagrun=2)
    def run_shard(out: str, shard: int) -> dict:
        from operators import curation_tasks

        return curation_tasks.run_shard(out, shard)

    @task
    def commit(planned: dict, results: list[dict]) -> dict:
        from operators import curation_tasks

        return curation_tasks.commit(planned["curated"], planned["shards"])

    @task
    def write_release(planned: dict, summary: dict, params=None) -> dict:
        from evaluation.msrvtt.builder import read_keep, write_release as write

        report = write(planned["out"], read_keep(params["keep"] or None))
        return {"out": planned["out"], "samples": report["samples"], "modes": report["modes"]}

    planned = plan()
    results = run_shard.expand_kwargs(shard_args(planned))
    write_release(planned, commit(planned, results))


build_benchmark()

"""Every DAG file imports cleanly, is tagged, retries, and parses cheaply."""
import subprocess
import sys
from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dagbag(airflow_home):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert {"curate", "curate_incoming"} <= set(dagbag.dags)


def test_every_dag_is_tagged_and_retries(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.default_args.get("retries", 0) >= 2, f"{dag_id} retries < 2"
        for t in dag.tasks:
            assert t.retries >= 2, f"{dag_id}.{t.task_id} retries < 2"


def test_curate_dag_shape(dagbag):
    dag = dagbag.dags["curate"]
    assert {t.task_id for t in dag.tasks} == {"plan", "shard_args", "run_shard", "commit"}
    assert [o.name for o in dag.get_task("commit").outlets] == ["alchemist_curated"]


def test_build_benchmark_dag_shape(dagbag):
    dag = dagbag.dags["build_benchmark"]
    assert {t.task_id for t in dag.tasks} == {"plan", "shard_args", "run_shard", "commit", "write_release"}
    assert dag.get_task("write_release").upstream_task_ids == {"plan", "commit"}


@pytest.mark.parametrize("path", sorted(DAGS.glob("*.py")), ids=lambda p: p.name)
def test_dag_files_do_not_import_heavy_libraries(path):
    """Parsing a DAG file must not import torch, transformers, ray or our stages."""
    code = (f"import sys, runpy; runpy.run_path({str(path)!r}); "
            "heavy = [m for m in ('torch', 'transformers', 'ray', 'cv2', 'curation.stages') if m in sys.modules]; "
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1:] in ([], [""]), f"heavy imports: {out.stdout}"


def test_curation_task_policies(dagbag):
    """Back-off retries everywhere; the shard tasks are pooled and time-limited, by shard name."""
    from operators.policy import GPU_POOL

    for dag_id in ("curate", "curate_incoming"):
        dag = dagbag.dags[dag_id]
        for t in dag.tasks:
            assert t.retry_exponential_backoff > 1 and t.max_retry_delay, f"{dag_id}.{t.task_id}"
        shard = dag.get_task("run_shard")
        assert shard.pool == GPU_POOL and shard.execution_timeout is not None
        assert "shard_label" in shard.map_index_template
    incoming = dagbag.dags["curate_incoming"]
    assert incoming.catchup is False and incoming.timetable.expression == "*/15 * * * *"  # the default cron

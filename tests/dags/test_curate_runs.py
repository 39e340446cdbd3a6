"""The `curate` DAG's failure path and its default output location, on real `airflow dags test`
runs (issue 9 item 7): an operator error fails `plan` once, without a retry, and runs nothing
else; without `out`, a run writes `$ALCHEMIST_WAREHOUSE/<dataset>/<run id>`."""
import sqlite3
from pathlib import Path

import pytest

from curation import warehouse
from curation.airflow_env import dags_test

pytestmark = pytest.mark.slow


def _task_states(airflow_home) -> dict[str, tuple[str, int]]:
    """task id -> (state, try number) of the latest `curate` run."""
    with sqlite3.connect(airflow_home / "airflow.db") as con:
        run_id = con.execute("SELECT run_id FROM dag_run WHERE dag_id = 'curate' ORDER BY id DESC LIMIT 1").fetchone()[0]
        rows = con.execute("SELECT task_id, state, try_number FROM task_instance WHERE dag_id = 'curate' "
                           "AND run_id = ?", (run_id,)).fetchall()
    return run_id, {task: (state, tries) for task, state, tries in rows}


def test_an_operator_error_fails_plan_once_without_retry(airflow_home, tmp_path):
    result = dags_test(airflow_home, "curate", {"manifest": str(tmp_path / "missing.csv"),
                                                "out": str(tmp_path / "ds")})
    _, states = _task_states(airflow_home)
    assert states["plan"] == ("failed", 1), (states, result.stderr[-2000:])
    assert all(state in (None, "upstream_failed") for task, (state, _) in states.items() if task != "plan")
    assert "does not exist" in result.stdout + result.stderr
    assert not (tmp_path / "ds").exists()


def test_without_out_a_run_writes_its_own_version_under_the_warehouse(airflow_home, ray_session, tmp_path,
                                                                     monkeypatch):
    from operators.curation_tasks import dataset_dir

    manifest = tmp_path / "m.csv"
    manifest.write_text("video,caption\ngone.mp4,A dog runs.\nlost.mp4,A cat sits.\n")
    config = tmp_path / "ingest_only.yaml"
    config.write_text("skip: [shots, motion, entities, frames, grounding, faces, background]\n")
    monkeypatch.setenv("ALCHEMIST_WAREHOUSE", str(tmp_path / "warehouse"))
    result = dags_test(airflow_home, "curate", {"manifest": str(manifest), "dataset": "mydata",
                                                "config": str(config), "shard_size": 1})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    run_id, states = _task_states(airflow_home)
    assert states["commit"][0] == "success"
    out = tmp_path / "warehouse" / "mydata" / Path(dataset_dir(str(tmp_path / "warehouse"), "mydata", run_id)).name
    assert [p for p in (tmp_path / "warehouse" / "mydata").iterdir()] == [out]
    assert warehouse.committed_shards(out) == [0, 1] and (out / "_SUCCESS").exists()

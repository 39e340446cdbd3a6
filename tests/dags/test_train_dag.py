"""The `train` DAG: scheduled by the curated asset; a run started from an asset event trains
on that event's dataset and emits `alchemist_model` with the checkpoint and final metrics."""
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from operators import training_tasks
from operators.assets import CURATED

DAGS = Path(__file__).resolve().parents[2] / "dags"


def test_schedule_is_the_curated_asset(airflow_home):
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(DAGS / "train.py")).dags["train"]
    assert [a.name for a in dag.timetable.asset_condition.objects] == ["alchemist_curated"]
    assert [o.name for o in dag.get_task("fit").outlets] == ["alchemist_model"]


def test_triggering_event_names_the_dataset(tmp_path):
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "_SUCCESS").write_text("{}")
    events = {CURATED: [SimpleNamespace(extra={"location": "old"}), SimpleNamespace(extra={"location": str(tmp_path / "ds")})]}
    params = {"config": "demo", "steps": 0, "out": "", "asset_event": {"location": "ignored"}}
    job = training_tasks.job_from_event(training_tasks.event_extra(params, events, CURATED), params, "run:1")
    assert job["dataset"] == str(tmp_path / "ds") and job["run_dir"].endswith("run_1")
    by_hand = training_tasks.event_extra(params | {"asset_event": {"location": "x"}}, {}, CURATED)
    assert by_hand == {"location": "x"}
    from curation.errors import OperatorError

    with pytest.raises(OperatorError, match="not a committed dataset"):
        training_tasks.job_from_event({"location": str(tmp_path)}, params, "r")


@pytest.mark.slow
def test_run_from_an_asset_event_trains_on_that_dataset(airflow_home, tmp_path):
    from curation.airflow_env import asset_events, dags_test
    from training.synthetic import SpriteClip, write_sprite_dataset

    dataset = write_sprite_dataset(tmp_path / "curated", [SpriteClip("square", (200, 40, 40), d) for d in (1, -1)])
    conf = {"asset_event": {"location": str(dataset), "counts": {"clips": 2}}, "steps": 2, "out": str(tmp_path / "run")}
    result = dags_test(airflow_home, "train", conf)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    event = asset_events(airflow_home, "alchemist_model")[-1]
    assert event["dataset"] == str(dataset) and event["metrics"]["step"] == 2
    config = json.loads((Path(event["checkpoint"]) / "config.json").read_text())
    assert config["train"]["datasets"] == [str(dataset)] and config["train"]["cache"]["caches"] == [
        str(dataset / "_latents" / "demo")]

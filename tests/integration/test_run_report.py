"""The curate DAG's monitor surface on the demo run: shard task names with their counts
(rendered map index), the commit summary, and the run report beside the dataset."""
import json
import sqlite3
from pathlib import Path

import pytest
from PIL import Image

from curation import warehouse
from curation.inspect import reason_counts

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dataset(demo_dag_run):
    path, result = demo_dag_run
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return path


def _shard_rows(airflow_home, dataset):
    with sqlite3.connect(Path(airflow_home) / "airflow.db") as con:
        run_id = con.execute("SELECT run_id FROM task_instance WHERE task_id='plan' ORDER BY start_date DESC").fetchone()[0]
        return con.execute("SELECT map_index, rendered_map_index FROM task_instance WHERE task_id='run_shard' "
                           "AND run_id=? ORDER BY map_index", (run_id,)).fetchall()


def test_shard_tasks_are_named_by_shard_rows_and_counts(dataset, airflow_home):
    rows = _shard_rows(airflow_home, dataset)
    assert [i for i, _ in rows] == [0, 1, 2]
    accepted = 0
    for i, label in rows:
        assert label.startswith(f"shard {i} rows {2 * i}-{2 * i + 1}: 2 in, "), label
        accepted += int(label.split(", ")[1].split()[0])
    assert accepted == warehouse.read_table(dataset, "clips").num_rows
    assert "shots:shot_boundary" in " ".join(label for _, label in rows)


def test_report_has_funnel_words_and_contact_sheet(dataset):
    report = dataset / "_report"
    page = (report / "index.html").read_text()
    for png in ("funnel.png", "entity_words.png"):
        with Image.open(report / png) as im:
            assert im.format == "PNG" and im.width > 100
        assert png in page
    for level, stage, reason, n in reason_counts(dataset):
        if level in ("input", "clip"):
            assert f"<td>{stage}</td><td>{reason}</td><td>{n}</td>" in page
    assert "contact_sheet.html" in page and (report / "contact_sheet.html").exists()
    assert "still_image" in page or "slight_motion" in page  # the rejected sample shows reasons


def test_asset_event_links_the_report(dataset, airflow_home):
    from curation.airflow_env import asset_events

    event = asset_events(airflow_home, "alchemist_curated")[-1]
    assert event["report"] == (dataset / "_report" / "index.html").resolve().as_uri()
    assert json.loads((dataset / "_SUCCESS").read_text())["counts"] == event["counts"]

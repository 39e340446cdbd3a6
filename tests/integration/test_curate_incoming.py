"""`curate_incoming` (issue 13 "Done when"): two manifests dropped into the watched folder
become one dataset version each, recorded in the warehouse; a second run with no new file
does nothing; the same content under another name is not published again."""
import csv
import json
import shutil

import pytest

from curation import versions
from curation.airflow_env import asset_events, dags_test

pytestmark = pytest.mark.slow


def _split_demo_manifest(demo_manifest, incoming):
    """Two one-row manifests from the demo's rows (the generated clip and the face clip), with
    the videos beside them: ingest opens sources under the manifest's own folder only."""
    with open(demo_manifest, newline="") as f:
        rows = list(csv.DictReader(f))
    picked = [r for r in rows if "red_ball" in r["video"]] + [r for r in rows if "carphone" in r["video"]]
    shutil.copytree(demo_manifest.parent / "videos", incoming / "videos")
    for i, row in enumerate(picked):
        with open(incoming / f"drop_{i}.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            writer.writeheader()
            writer.writerow(row)
    return sorted(incoming.glob("*.csv"))


def _run(airflow_home, incoming, warehouse):
    result = dags_test(airflow_home, "curate_incoming", {"incoming": str(incoming), "warehouse": str(warehouse),
                                                         "dataset": "drops", "shard_size": 1})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_each_dropped_manifest_is_published_once(airflow_home, ray_session, demo_manifest, tmp_path):
    incoming, warehouse = tmp_path / "incoming", tmp_path / "warehouse"
    drops = _split_demo_manifest(demo_manifest, incoming)
    events_before = len(asset_events(airflow_home, "alchemist_curated"))

    _run(airflow_home, incoming, warehouse)
    published = versions.published(warehouse, "drops")
    assert sorted(v["manifest"] for v in published.values()) == [str(p.resolve()) for p in drops]
    for key, entry in published.items():
        assert key == versions.manifest_key(entry["manifest"])
        assert json.loads((versions.version_dir(warehouse, "drops", key) / "_SUCCESS").read_text())["counts"] == entry["counts"]
    events = asset_events(airflow_home, "alchemist_curated")[events_before:]
    assert sorted(e["location"] for e in events) == sorted(v["location"] for v in published.values())

    shutil.copy(drops[0], incoming / "same_content_again.csv")  # a re-sent file is not a new version
    dirs_before = sorted(p.name for p in (warehouse / "drops").iterdir())
    _run(airflow_home, incoming, warehouse)
    assert versions.published(warehouse, "drops") == published
    assert sorted(p.name for p in (warehouse / "drops").iterdir()) == dirs_before
    assert len(asset_events(airflow_home, "alchemist_curated")) == events_before + len(drops)


def test_record_is_exclusive(tmp_path):
    assert versions.record(tmp_path, "d", "abc", {"location": "x"})
    assert not versions.record(tmp_path, "d", "abc", {"location": "y"})
    assert versions.published(tmp_path, "d")["abc"]["location"] == "x"

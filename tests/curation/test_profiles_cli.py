"""Profiles build real stages; operator mistakes reach the user as one line and exit code 2."""
import os
import subprocess
import sys

import pytest

from curation.config import ConfigError, RunConfig, load_config
from curation.profiles import build_stages, stage_names


@pytest.mark.parametrize("profile", ["offline", "lite", "full"])
def test_every_profile_builds_its_stages(profile):
    stages = build_stages(load_config(profile=profile))
    assert [s.name for s in stages] == ["ingest", "shots", "motion", "entities", "frames",
                                         "grounding", "faces", "background"]
    gpu_stages = {s.name for s in stages if s.resources.gpus}
    assert gpu_stages == ({"shots", "entities", "grounding", "background"} if profile == "full" else set())


def test_undesirable_filter_picks_the_filter_stages():
    assert "videomae" not in stage_names(RunConfig())
    both = stage_names(RunConfig(undesirable_filter="both"))
    assert both.index("motion") < both.index("videomae") < both.index("entities")
    assert "motion" not in stage_names(RunConfig(undesirable_filter="videomae"))


def test_a_stage_setting_typo_names_the_real_settings(tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("stages:\n  motion: {residual_mn: 0.1}\n")
    with pytest.raises(ConfigError, match=r"stage 'motion' has no setting\(s\) \['residual_mn'\]; its settings are"):
        build_stages(load_config(cfg))


@pytest.mark.parametrize("argv, message", [
    (["curate", "--manifest", "nope.csv", "--out", "x"], "manifest nope.csv does not exist"),
    (["inspect", "no_such_dataset"], "does not exist; run `alchemist curate"),
    (["models", "tiny", "--out", "x", "--only", "gpt5"], "unknown tiny model(s) ['gpt5']"),
])
def test_cli_operator_errors_are_one_line(argv, message, tmp_path):
    result = subprocess.run([sys.executable, "-m", "curation.cli", *argv], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


@pytest.mark.parametrize("config, message", [
    ("profile: lite\n", "model IDEA-Research/grounding-dino-tiny is not in the local Hugging Face cache"),
    ("stages:\n  faces: {backend: yolo}\n", "stage 'faces' needs stages.faces.yolo_weights"),
    ("undesirable_filter: both\n", "stage 'videomae' needs stages.videomae.model"),
    ("stages:\n  grounding: {detector: grounding_dino, detector_model: /nope/gdino}\n",
     "model directory /nope/gdino does not exist"),
])
def test_a_missing_model_fails_before_any_work(config, message, tmp_path):
    (tmp_path / "run.yaml").write_text(config)
    (tmp_path / "m.csv").write_text("video,caption\nv.mp4,A dog runs.\n")
    result = subprocess.run([sys.executable, "-m", "curation.cli", "curate", "--manifest", "m.csv",
                             "--out", "ds", "--config", "run.yaml"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert result.returncode == 2 and message in result.stderr, result.stderr[-2000:]
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "ds").exists()

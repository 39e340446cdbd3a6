"""Preflight lists every missing model at once; a stage whose setup() fails ends the run with
one line and exit code 2. No test reaches beyond loopback: the hub is a closed local port."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest


def closed_loopback_port() -> int:
    """A loopback port nothing listens on: connections to it are refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def curate(tmp_path, config: str, env: dict, *extra: str) -> tuple[subprocess.CompletedProcess, float]:
    """`alchemist [--debug] curate ... [--no-ray]` (each flag where its parser takes it)."""
    (tmp_path / "run.yaml").write_text(config)
    (tmp_path / "m.csv").write_text("video,caption\nv.mp4,A dog runs.\n")
    start = time.monotonic()
    before = [x for x in extra if x == "--debug"]
    after = [x for x in extra if x != "--debug"]
    result = subprocess.run([sys.executable, "-m", "curation.cli", *before, "curate", "--manifest",
                             "m.csv", "--out", "ds", "--config", "run.yaml", *after], cwd=tmp_path,
                            capture_output=True, text=True, timeout=600, env=env)
    return result, time.monotonic() - start


def no_hub_env(tmp_path, offline: bool) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HOME", "HF_HUB_CACHE")}
    env.update(HF_HOME=str(tmp_path / "empty_hf_home"),  # an empty model cache
               HF_ENDPOINT=f"http://127.0.0.1:{closed_loopback_port()}")
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    return env


@pytest.mark.parametrize("offline", [False, True])
def test_lite_without_models_lists_every_missing_model_at_once(tmp_path, offline):
    result, seconds = curate(tmp_path, "profile: lite\n", no_hub_env(tmp_path, offline))
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-3000:]
    assert "2 models of this run are missing" in lines[0]
    for setting, spec in [("detector_model", "IDEA-Research/grounding-dino-tiny"),
                          ("segmenter_model", "facebook/sam-vit-base")]:
        assert f"stages.grounding.{setting}: model {spec} is not in the local Hugging Face cache" in lines[0]
    assert ("the hub is offline" if offline else "the hub cannot provide it") in lines[0]
    assert not (tmp_path / "ds").exists()
    # Before: ~3 minutes of download retries and a 540-line traceback. The bound is loose
    # because it includes interpreter start-up on a loaded CI machine.
    assert seconds < 60, seconds


def test_a_stage_whose_setup_fails_ends_the_run_with_one_line(tmp_path):
    """In-process (`--no-ray`): the same StageSetupError a failed Ray actor raises."""
    not_a_checkpoint = tmp_path / "videomae_ckpt"
    not_a_checkpoint.mkdir()  # exists, so preflight passes; setup() cannot load it
    config = f"undesirable_filter: videomae\nstages:\n  videomae: {{model: {not_a_checkpoint}}}\n"
    env = no_hub_env(tmp_path, offline=True)
    result, _ = curate(tmp_path, config, env, "--no-ray")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr[-3000:]
    assert len(lines) == 1 and "stage 'videomae' failed in setup()" in lines[0], result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    debug, _ = curate(tmp_path, config, env, "--debug", "--no-ray")
    assert debug.returncode != 2 and "Traceback" in debug.stderr  # --debug shows where


def test_the_line_of_a_failed_ray_actor_is_what_setup_raised():
    from curation.stage_pool import root_cause_line

    ray_text = ("The actor died because of an error raised in its creation task, "
                "ray::StageWorker.__init__() (pid=12, ip=127.0.0.1)\n  File \"x.py\", line 3, in setup\n"
                "    raise ModelUnavailable(msg)\n"
                "model.model_registry.ModelUnavailable: model directory /m does not exist; write it")
    assert root_cause_line(RuntimeError(ray_text)) == (
        "model.model_registry.ModelUnavailable: model directory /m does not exist; write it")
    assert root_cause_line(RuntimeError("plain")) == "plain"

"""Training checkpoints: the model bundle format (safetensors + config.json) plus trainer state.

    <run>/checkpoints/step-0000100/config.json          resolved configs; "train": the run's
                                                         resolved TrainConfig, step, data position
    <run>/checkpoints/step-0000100/weights.safetensors  dit.*, vae.*, ema.*
    <run>/checkpoints/step-0000100/trainer_state.pt     optimizer, lr schedule, RNG state
    <run>/checkpoints/latest                             name of the newest complete checkpoint

`alchemist sample` and the benchmarks read the same directories (model.checkpoint.load_bundle).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

TRAINER_STATE = "trainer_state.pt"
LATEST = "latest"


def checkpoint_dir(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"step-{step:07d}"


def save_checkpoint(run, step: int) -> Path:
    """Weights and configs through save_bundle, then the trainer state, then `latest`."""
    from model.checkpoint import save_bundle

    path = checkpoint_dir(run.run_dir, step)
    train = {"config": run.cfg.to_dict(), "step": step, "position": run.position.to_dict(),
             "stream_index": run.stream_index, "datasets": [str(d) for d in run.datasets],
             "skips": run.skips.to_dict(), "cache": run.cache_info}
    save_bundle(path, run.dit, run.vae, run.encoders, run.flow.cfg, run.sampler_cfg, train=train,
                ema=run.ema, extra={"metrics": run.last_metrics})
    state = {"optimizer": run.optimizer.state_dict(), "schedule": run.schedule.state_dict(),
             "torch_rng": torch.get_rng_state()}
    tmp = path / f".{TRAINER_STATE}.tmp"
    torch.save(state, tmp)
    os.replace(tmp, path / TRAINER_STATE)
    latest = path.parent / LATEST
    latest.with_suffix(".tmp").write_text(path.name)
    os.replace(latest.with_suffix(".tmp"), latest)
    return path


def latest_checkpoint(run_dir: Path) -> Path | None:
    latest = Path(run_dir) / "checkpoints" / LATEST
    return latest.parent / latest.read_text().strip() if latest.exists() else None


def restore(run, path: Path) -> int:
    """Load weights, EMA, optimizer, schedule, data position; returns the step to continue at."""
    from model.checkpoint import load_weights, read_bundle_config
    from training.reader import Position

    raw = read_bundle_config(path)
    run.dit.load_state_dict(load_weights(path, "dit"))
    if run.ema is not None:
        run.ema = load_weights(path, "ema")
    state = torch.load(Path(path) / TRAINER_STATE, weights_only=False)
    run.optimizer.load_state_dict(state["optimizer"])
    run.schedule.load_state_dict(state["schedule"])
    torch.set_rng_state(state["torch_rng"])
    train = raw["train"]
    run.last_metrics = raw["extra"].get("metrics", {})
    run.position = Position(**train["position"])
    run.stream_index = train["stream_index"]
    for reason, n in train["skips"].items():
        run.skips.counts[reason] = n
    return train["step"]

"""Training metrics: a JSON-lines log (loss, loss by timestep bin, samples/s), a loss-curve PNG."""
from __future__ import annotations

import json
from pathlib import Path

import torch

T_BINS = (0.0, 0.25, 0.5, 0.75, 1.0)  # ours: four equal bins of t (1 = noise)


def loss_by_t(mse: torch.Tensor, t: torch.Tensor) -> dict[str, float]:
    """Mean per-sample loss in each bin of t that holds samples."""
    out = {}
    for lo, hi in zip(T_BINS[:-1], T_BINS[1:]):
        inside = (t >= lo) & ((t < hi) if hi < 1 else (t <= hi))
        if inside.any():
            out[f"{lo:.2f}-{hi:.2f}"] = float(mse[inside].mean())
    return out


def append(path: Path, row: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")


def read(path: Path) -> list[dict]:
    path = Path(path)
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def plot_loss(log_path: Path, png_path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read(log_path)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([r["step"] for r in rows], [r["loss"] for r in rows], lw=1)
    ax.set_xlabel("step")
    ax.set_ylabel("rectified-flow loss")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return Path(png_path)

"""Personalization DiT on this machine (CPU): training throughput and guided sampling cost.

  train step      one rectified-flow training step (self-conditioning pass, forward, backward,
                  AdamW) of the dit-tiny and dit-s presets; FLOPs counted by torch's
                  FlopCounterMode, so "achieved" is counted FLOPs / measured time
  matmul          FLOP/s of a plain (tokens x width) @ (width x width) matrix multiply at the
                  same width, measured in the same run: the ceiling the step is compared with
  sampling        128 Euler steps of dit-tiny with the paper's batched three-branch guidance
                  inside [0.15, 0.5], against naive guidance (three separate forwards at
                  every step, no interval)
"""
from __future__ import annotations

import os

import torch

from model.config import DIT_CONFIGS, FlowConfig, SamplerConfig
from model.dit import DiT
from model.personalization import Conditioning
from model.rectified_flow import RectifiedFlow
from model.sampler import euler_sample, naive_guided_sample

from benchmark.timing import best_of
from model.model_registry import torch_threads

REPEATS = 3  # timed repetitions after one warm-up; the best is reported (noisy machine)
# Per preset: batch, latent (F, H, W), text tokens, references x image tokens.
TRAIN_SHAPES = {"dit-tiny": (4, (5, 8, 8), 16, (2, 16)), "dit-s": (2, (3, 8, 8), 16, (2, 16)),
                "dit-s@1024": (1, (4, 32, 32), 64, (2, 64))}  # 1,024 video tokens per clip
SAMPLE_STEPS = 128  # paper B.3, evaluation setting
BENCH_THREADS = 1



def _best(fn, repeats: int = REPEATS) -> float:
    return best_of(fn, repeats)


def _row(metric: str, value: float, unit: str, notes: str) -> dict:
    return {"benchmark": "model", "metric": metric, "value": value, "unit": unit, "notes": notes}


def _inputs(cfg, batch, latent, text_len, refs, seed=0):
    g = torch.Generator().manual_seed(seed)
    n_refs, n_tokens = refs
    cond = Conditioning(
        text=torch.randn(batch, text_len, cfg.text_dim, generator=g),
        text_mask=torch.ones(batch, text_len, dtype=torch.bool),
        ref_tokens=torch.randn(batch, n_refs, n_tokens, cfg.image_dim, generator=g),
        ref_mask=torch.ones(batch, n_refs, dtype=torch.bool),
        word_index=torch.randint(0, text_len, (batch, n_refs, cfg.word_tokens), generator=g),
    )
    return torch.randn(batch, cfg.in_channels, *latent, generator=g), cond


def _matmul_flops(width: int, rows: int) -> float:
    a, b = torch.randn(rows, width), torch.randn(width, width)
    return 2 * rows * width * width / _best(lambda: a @ b, repeats=10)


def _train_rows(name: str) -> list[dict]:
    from torch.utils.flop_counter import FlopCounterMode

    cfg = DIT_CONFIGS[name.split("@")[0]]
    batch, latent, text_len, refs = TRAIN_SHAPES[name]
    torch.manual_seed(0)
    model, rf = DiT(cfg), RectifiedFlow(FlowConfig(shift=1.0, self_cond_prob=1.0))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x, cond = _inputs(cfg, batch, latent, text_len, refs)

    def step():
        loss = rf.training_losses(model, x, cond)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    counter = FlopCounterMode(display=False)
    with counter:
        step()
    flops, seconds = counter.get_total_flops(), _best(step)
    tokens = batch * (latent[0] * latent[1] * latent[2] // 4)
    matmul = _matmul_flops(cfg.width, tokens)
    shape = f"B={batch}, latent {latent}, {tokens} video tokens, width {cfg.width}, depth {cfg.depth}"
    return [
        _row(f"{name} train step", seconds * 1000, "ms", f"{shape}; self-conditioning pass included"),
        _row(f"{name} achieved", flops / seconds / 1e9, "GFLOP/s", f"{flops / 1e9:.2f} GFLOP counted per step"),
        _row(f"{name} matmul", matmul / 1e9, "GFLOP/s", f"({tokens} x {cfg.width}) @ ({cfg.width} x {cfg.width})"),
        _row(f"{name} utilization", flops / seconds / matmul, "ratio", "achieved / matmul, same run"),
    ]


def _sampling_rows() -> list[dict]:
    cfg = DIT_CONFIGS["dit-tiny"]
    torch.manual_seed(0)
    model = DiT(cfg).eval()
    x, cond = _inputs(cfg, 1, (5, 8, 8), 16, (2, 16))
    sampler = SamplerConfig(steps=SAMPLE_STEPS)
    batched = _best(lambda: euler_sample(model, x, cond, sampler), repeats=1)
    naive = _best(lambda: naive_guided_sample(model, x, cond, sampler), repeats=1)
    guided = sum(1 for i in range(SAMPLE_STEPS) if 0.15 <= 1 - i / SAMPLE_STEPS <= 0.5)
    note = f"dit-tiny, 80 video tokens, {SAMPLE_STEPS} steps, shift 1"
    return [
        _row("sample batched+interval", batched, "s", f"{note}; {guided} guided steps of 3B, the rest B"),
        _row("sample naive guidance", naive, "s", f"{note}; 3 forwards of B at every step"),
        _row("sample speedup", naive / batched, "x", "naive / batched+interval, same run"),
    ]


def run() -> list[dict]:
    # One intra-op thread: on this shared 2-core machine two threads spin against other
    # processes and steps ran up to 10x slower; every ratio below is at the same setting.
    with torch_threads(BENCH_THREADS):
        rows = []
        for name in TRAIN_SHAPES:
            rows += _train_rows(name)
        rows += _sampling_rows()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    rows.append(_row("torch threads", BENCH_THREADS, "", f"1-min load average {load:.1f} at the end"))
    return rows


if __name__ == "__main__":
    from benchmark.run import to_markdown

    print(to_markdown(run()))

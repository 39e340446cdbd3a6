"""Euler sampler with dual classifier-free guidance in an interval (paper B.3).

    v = v(0, 0) + s_text (v(text, 0) - v(0, 0)) + s_img (v(text, img) - v(text, 0))

with s_text = 8 and s_img = 2.5, applied only while the shifted t lies in [0.15, 0.5]
(Kynkäänniemi et al. 2024); outside it the plain conditional prediction is used. Inside the
interval the three branches run as one batched forward of 3B samples, each branch carrying
its own self-conditioning estimate of x_0. Optional dynamic thresholding (Imagen) on the
predicted clean sample is our addition against oversaturation (paper, Limitations).
"""
from __future__ import annotations

import torch

from model.config import SamplerConfig
from model.personalization import Conditioning
from model.rectified_flow import time_grid

BRANCHES = 3  # (no text, no image), (text, no image), (text, image)


def in_interval(t: float, interval: tuple[float, float], reading: str = "noise_at_1") -> bool:
    """Is shifted t (1 = noise) inside the guidance interval, read as `reading` says?"""
    time = t if reading == "noise_at_1" else 1.0 - t
    return interval[0] <= time <= interval[1]


def branch_keeps(batch: int, device):
    """keep_text, keep_image (3B,) for the three stacked guidance branches."""
    keep_text = torch.tensor([0.0, 1.0, 1.0], device=device).repeat_interleave(batch)
    keep_image = torch.tensor([0.0, 0.0, 1.0], device=device).repeat_interleave(batch)
    return keep_text, keep_image


def combine(v_none, v_text, v_full, text_scale: float, image_scale: float):
    return v_none + text_scale * (v_text - v_none) + image_scale * (v_full - v_text)


def dynamic_threshold(x, t: float, v, percentile: float, floor: float):
    """Imagen's dynamic thresholding on x_0 = x_t - t v, with the floor 1 raised to `floor`.

    s = the per-sample percentile of |x_0|, at least `floor`; x_0 is clipped to [-s, s] and
    scaled by floor / s, then turned back into a velocity.
    """
    x0 = x - t * v
    s = torch.quantile(x0.abs().flatten(1).float(), percentile, dim=1).clamp(min=floor)
    s = s.view(-1, *([1] * (x.dim() - 1))).to(x.dtype)
    x0 = torch.maximum(torch.minimum(x0, s), -s) * (floor / s)
    return (x - x0) / t


def guided_velocity(model, x, t: float, cond3: Conditioning, keeps, self_cond, cfg: SamplerConfig):
    """One batched forward of the three branches; returns v and the branches' new x_0 estimates."""
    b = x.shape[0]
    tt = torch.full((BRANCHES * b,), t, device=x.device, dtype=x.dtype)
    x3 = x.repeat(BRANCHES, *([1] * (x.dim() - 1)))  # (3B, C, F, H, W)
    v3 = model(x3, tt, cond3, keeps[0], keeps[1], self_cond=self_cond)
    new_self_cond = x3 - t * v3
    v_none, v_text, v_full = v3.chunk(BRANCHES, dim=0)
    return combine(v_none, v_text, v_full, cfg.text_scale, cfg.image_scale), new_self_cond


@torch.no_grad()
def euler_sample(model, noise, cond: Conditioning, cfg: SamplerConfig = SamplerConfig(), shift=1.0, callback=None):
    """Integrate dx/dt = v from t = 1 (noise) to t = 0; exactly one model call per step."""
    x, b = noise, noise.shape[0]
    times = time_grid(cfg.steps, shift).tolist()
    cond3, keeps = cond.repeat(BRANCHES), branch_keeps(b, x.device)
    # Branch order (none, text, full); each keeps its own x_0 estimate (zeros = "none yet").
    self_cond = torch.zeros((BRANCHES * b, *x.shape[1:]), device=x.device, dtype=x.dtype)
    for t, t_next in zip(times[:-1], times[1:]):
        if in_interval(t, cfg.interval, cfg.interval_reading):
            v, self_cond = guided_velocity(model, x, t, cond3, keeps, self_cond, cfg)
        else:
            tt = torch.full((b,), t, device=x.device, dtype=x.dtype)
            v = model(x, tt, cond, self_cond=self_cond[2 * b :])
            self_cond[2 * b :] = x - t * v
        if cfg.dynamic_threshold:
            v = dynamic_threshold(x, t, v, cfg.threshold_percentile, cfg.threshold_floor)
        x = x + (t_next - t) * v
        if callback is not None:
            callback(t, x)
    return x


@torch.no_grad()
def naive_guided_sample(model, noise, cond: Conditioning, cfg: SamplerConfig = SamplerConfig(), shift=1.0):
    """Reference sampler for the benchmark: three separate forwards at every step, no interval."""
    x, b = noise, noise.shape[0]
    ones, zeros = torch.ones(b, device=x.device), torch.zeros(b, device=x.device)
    self_cond = [torch.zeros_like(x) for _ in range(BRANCHES)]
    times = time_grid(cfg.steps, shift).tolist()
    keeps = ((zeros, zeros), (ones, zeros), (ones, ones))
    for t, t_next in zip(times[:-1], times[1:]):
        tt = torch.full((b,), t, device=x.device, dtype=x.dtype)
        vs = [model(x, tt, cond, kt, ki, self_cond=sc) for (kt, ki), sc in zip(keeps, self_cond)]
        self_cond = [x - t * v for v in vs]
        x = x + (t_next - t) * combine(*vs, cfg.text_scale, cfg.image_scale)
    return x

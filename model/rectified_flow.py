"""Rectified flow: the training objective and the entry point to sampling (paper B.2, B.3).

Time convention (SD3, minRF): t = 1 is pure noise, t = 0 is data;
x_t = (1 - t) x_0 + t eps, and the model predicts the velocity v = eps - x_0, so
x_0 = x_t - t v. The trainer holds no noise math: it calls `training_losses`.
"""
from __future__ import annotations

import math

import torch

from model.config import FlowConfig, SamplerConfig
from model.personalization import Conditioning

# ---------------------------------------------------------------------------------------
# Time: sampling and resolution-dependent shift
# ---------------------------------------------------------------------------------------


def time_shift(t, shift: float):
    """SD3 / Lumina-T2X shift: t' = s t / (1 + (s - 1) t); s > 1 spends more time near noise."""
    return shift * t / (1 + (shift - 1) * t)


def resolution_shift(num_tokens: int, base_tokens: int) -> float:
    """SD3's rule: the noise level that hides a signal grows with sqrt(number of tokens)."""
    return math.sqrt(num_tokens / base_tokens)


def time_grid(steps: int, shift: float, device=None):
    """steps + 1 shifted times from 1 (noise) down to 0 (data)."""
    return time_shift(torch.linspace(1.0, 0.0, steps + 1, device=device, dtype=torch.float64), shift)


def latent_tokens(latent_shape, patch_size) -> int:
    """Number of DiT tokens of a (..., F, H, W) latent."""
    return math.prod(n // p for n, p in zip(latent_shape[-3:], patch_size))


# ---------------------------------------------------------------------------------------
# The objective
# ---------------------------------------------------------------------------------------


class RectifiedFlow:
    def __init__(self, cfg: FlowConfig = FlowConfig()):
        if cfg.timestep_sampling not in ("uniform", "logit_normal"):
            raise ValueError(f"timestep_sampling must be uniform or logit_normal, got {cfg.timestep_sampling!r}")
        self.cfg = cfg

    def shift_for(self, latent_shape, patch_size) -> float:
        if self.cfg.shift is not None:
            return self.cfg.shift
        return resolution_shift(latent_tokens(latent_shape, patch_size), self.cfg.base_tokens)

    def base_t(self, batch: int, generator=None, device=None):  # (B,) uniform or standard normal
        if self.cfg.timestep_sampling == "uniform":
            return torch.rand(batch, generator=generator, device=device)
        return torch.randn(batch, generator=generator, device=device)

    def t_from_base(self, base, shift: float = 1.0):  # (B,) -> shifted t in (0, 1)
        t = base if self.cfg.timestep_sampling == "uniform" else torch.sigmoid(
            self.cfg.logit_mean + self.cfg.logit_std * base)
        return time_shift(t, shift)

    def sample_t(self, batch: int, shift: float = 1.0, generator=None, device=None):  # (B,)
        return self.t_from_base(self.base_t(batch, generator, device), shift)

    def keep_masks(self, u):  # (2, B) uniforms -> keep_text, keep_image (B,)
        return (u[0] >= self.cfg.drop_text).float(), (u[1] >= self.cfg.drop_image).float()

    def drop_masks(self, batch: int, generator=None, device=None):
        """Independent keep masks (B,) for text and image, each dropped with its probability."""
        return self.keep_masks(torch.rand(2, batch, generator=generator, device=device))

    def draws(self, shape, dtype, generator=None, device=None, seeds=None) -> dict:
        """Every random draw of a training step: base t (B,), noise, uniforms (3, B) for text
        drop, image drop and self-conditioning. With `seeds` (one int per sample) each sample
        draws from its own generator, so a sample's draws do not depend on how a global batch
        is split over workers."""
        if seeds is None:
            b = shape[0]
            return {"base": self.base_t(b, generator, device),
                    "noise": torch.randn(shape, generator=generator, device=device, dtype=dtype),
                    "u": torch.rand(3, b, generator=generator, device=device)}
        parts = [self.draws((1, *shape[1:]), dtype, torch.Generator().manual_seed(int(s))) for s in seeds]
        return {"base": torch.cat([p["base"] for p in parts]).to(device),
                "noise": torch.cat([p["noise"] for p in parts]).to(device),
                "u": torch.cat([p["u"] for p in parts], dim=1).to(device)}

    @staticmethod
    def interpolate(x0, noise, t):  # (B, C, F, H, W), same, (B,)
        t = t.view(-1, *([1] * (x0.dim() - 1))).to(x0.dtype)
        return (1 - t) * x0 + t * noise

    def self_condition(self, model, xt, t, cond, keep_text, keep_image, use):
        """Paper Table 5: where `use` (B,) is set, feed a first (no-grad) estimate of x_0 back in."""
        if not getattr(model.cfg, "self_conditioning", False):
            return None
        if not use.any():
            return torch.zeros_like(xt)
        with torch.no_grad():
            v = model(xt, t, cond, keep_text, keep_image, self_cond=None)
        x0 = xt - t.view(-1, 1, 1, 1, 1) * v
        return x0 * use.view(-1, 1, 1, 1, 1).to(x0.dtype)

    def training_losses(self, model, x, cond: Conditioning, generator=None, seeds=None) -> dict:
        """x: clean latents (B, C, F, H, W). Returns {"loss": scalar, "mse": (B,), "t": (B,)}.

        seeds: optional per-sample ints keying every draw (see `draws`)."""
        shift = self.shift_for(x.shape, model.cfg.patch_size)
        d = self.draws(x.shape, x.dtype, generator, x.device, seeds)
        t, noise = self.t_from_base(d["base"], shift), d["noise"]
        xt = self.interpolate(x, noise, t)
        keep_text, keep_image = self.keep_masks(d["u"][:2])
        use_self_cond = d["u"][2] < self.cfg.self_cond_prob
        self_cond = self.self_condition(model, xt, t, cond, keep_text, keep_image, use_self_cond)
        v = model(xt, t, cond, keep_text, keep_image, self_cond=self_cond)
        mse = (v.float() - (noise - x).float()).pow(2).flatten(1).mean(dim=1)  # (B,)
        return {"loss": mse.mean(), "mse": mse, "t": t}

    def sample(self, model, noise, cond: Conditioning, cfg: SamplerConfig = SamplerConfig(), shift=None, **kw):
        """Euler ODE from noise (t = 1) to data (t = 0) with dual guidance; see model/sampler.py."""
        from model.sampler import euler_sample

        if shift is None:
            shift = self.shift_for(noise.shape, model.cfg.patch_size)
        return euler_sample(model, noise, cond, cfg, shift=shift, **kw)

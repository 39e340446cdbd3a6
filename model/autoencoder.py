"""Video autoencoders behind one small interface (paper B.1, Table 5).

Read top to bottom: the interface every backend meets, the building blocks of the bundled
MAGVIT-v2 style causal 3D-convolution KL autoencoder, the autoencoder itself, and the adapter
for diffusers' pretrained video VAEs (AutoencoderKLWan).

Videos are (B, C, F, H, W) in [-1, 1]; latents are (B, Z, f, h, w). Causal temporal
compression by T maps 1 + T*k frames to 1 + k latent frames: the first frame is encoded
alone, so a clip's first latent frame never depends on later frames.
"""
from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from model.config import VAEConfig

# ---------------------------------------------------------------------------------------
# Interface
# ---------------------------------------------------------------------------------------


@runtime_checkable
class VideoAutoencoder(Protocol):
    temporal_compression: int
    spatial_compression: int
    latent_channels: int

    def encode(self, video: torch.Tensor) -> torch.Tensor: ...

    def decode(self, latents: torch.Tensor) -> torch.Tensor: ...


class ClipGeometry:
    """Which clip sizes an autoencoder accepts and what latent shape they give."""

    temporal_compression: int
    spatial_compression: int
    latent_channels: int

    def accepts_frames(self, frames: int) -> bool:
        return frames >= 1 and (frames - 1) % self.temporal_compression == 0

    def accepted_frames(self, up_to: int) -> list[int]:
        return list(range(1, up_to + 1, self.temporal_compression))

    def check_clip(self, frames: int, height: int, width: int, multiple: int = 1) -> None:
        """Raise ValueError naming the problem when a clip size does not fit."""
        t, s = self.temporal_compression, self.spatial_compression
        if not self.accepts_frames(frames):
            raise ValueError(
                f"{frames} frames do not fit this autoencoder: causal temporal compression "
                f"by {t} needs 1 + {t}*k frames, e.g. {self.accepted_frames(4 * t + 1)}"
            )
        step = s * multiple
        for name, size in (("height", height), ("width", width)):
            if size <= 0 or size % step:
                raise ValueError(f"{name} {size} must be a positive multiple of {step}")

    def latent_shape(self, frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        self.check_clip(frames, height, width)
        t, s = self.temporal_compression, self.spatial_compression
        return (self.latent_channels, 1 + (frames - 1) // t, height // s, width // s)


# ---------------------------------------------------------------------------------------
# Building blocks: causal convolution, per-frame norms, resampling
# ---------------------------------------------------------------------------------------


class CausalConv3d(nn.Module):
    """3D convolution padded only towards the past in time (replicating the first frame)."""

    def __init__(self, cin, cout, kernel=3, stride=(1, 1, 1), padding_mode="replicate"):
        super().__init__()
        self.time_pad, self.space_pad = kernel - 1, kernel // 2
        self.padding_mode = padding_mode
        self.conv = nn.Conv3d(cin, cout, kernel, stride=stride)

    def forward(self, x):  # (B, C, F, H, W)
        p = self.space_pad
        if self.time_pad or p:
            x = F.pad(x, (p, p, p, p, self.time_pad, 0), mode=self.padding_mode)
        return self.conv(x)


class FrameGroupNorm(nn.GroupNorm):
    """GroupNorm over each frame separately: statistics over time would leak the future."""

    def forward(self, x, z=None):  # (B, C, F, H, W)
        b = x.shape[0]
        x = super().forward(rearrange(x, "b c f h w -> (b f) c h w"))
        return rearrange(x, "(b f) c h w -> b c f h w", b=b)


class AdaptiveGroupNorm(nn.Module):
    """MAGVIT-v2 decoder norm: per-frame GroupNorm whose scale and shift come from the latent."""

    def __init__(self, groups, channels, z_channels):
        super().__init__()
        self.norm = FrameGroupNorm(groups, channels, affine=False)
        self.scale = nn.Conv3d(z_channels, channels, 1)
        self.shift = nn.Conv3d(z_channels, channels, 1)
        for proj in (self.scale, self.shift):  # start as a plain norm
            nn.init.zeros_(proj.weight)
            nn.init.zeros_(proj.bias)

    def forward(self, x, z):  # x (B, C, F, H, W), z (B, Z, f, h, w)
        # Nearest resizing maps output frame i to latent frame floor(i * f / F) <= i: causal.
        z = F.interpolate(z, size=x.shape[2:], mode="nearest")
        return self.norm(x) * (1 + self.scale(z)) + self.shift(z)


def make_norm(cfg: VAEConfig, channels: int, adaptive: bool) -> nn.Module:
    if adaptive:
        return AdaptiveGroupNorm(cfg.norm_groups, channels, cfg.latent_channels)
    return FrameGroupNorm(cfg.norm_groups, channels)


class ResBlock(nn.Module):
    def __init__(self, cfg: VAEConfig, cin: int, cout: int, adaptive: bool = False):
        super().__init__()
        pad = cfg.padding_mode
        self.norm1 = make_norm(cfg, cin, adaptive)
        self.conv1 = CausalConv3d(cin, cout, cfg.kernel_size, padding_mode=pad)
        self.norm2 = make_norm(cfg, cout, adaptive)
        self.conv2 = CausalConv3d(cout, cout, cfg.kernel_size, padding_mode=pad)
        self.skip = nn.Conv3d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, z=None):  # (B, C, F, H, W)
        h = self.conv1(F.silu(self.norm1(x, z)))
        h = self.conv2(F.silu(self.norm2(h, z)))
        return self.skip(x) + h


class Downsample(nn.Module):
    """Strided causal convolution: 1 + s*k frames become 1 + k."""

    def __init__(self, cfg: VAEConfig, channels: int, st: int, ss: int):
        super().__init__()
        self.conv = CausalConv3d(
            channels, channels, cfg.kernel_size, (st, ss, ss), padding_mode=cfg.padding_mode
        )

    def forward(self, x):
        return self.conv(x)


class Upsample(nn.Module):
    """Depth-to-space (MAGVIT-v2): 1 + k frames become s*(1 + k), minus s-1 leading frames."""

    def __init__(self, cfg: VAEConfig, channels: int, st: int, ss: int):
        super().__init__()
        self.st, self.ss = st, ss
        out = channels * st * ss * ss
        self.conv = CausalConv3d(channels, out, cfg.kernel_size, padding_mode=cfg.padding_mode)

    def forward(self, x):  # (B, C, f, h, w)
        x = self.conv(x)
        x = rearrange(
            x, "b (c pt ph pw) f h w -> b c (f pt) (h ph) (w pw)", pt=self.st, ph=self.ss, pw=self.ss
        )
        return x[:, :, self.st - 1 :]  # (B, C, 1 + st*k, H, W)


# ---------------------------------------------------------------------------------------
# The bundled autoencoder
# ---------------------------------------------------------------------------------------


def _level_channels(cfg: VAEConfig) -> list[int]:
    return [cfg.base_channels * m for m in cfg.channel_multipliers]


class Encoder(nn.Module):
    def __init__(self, cfg: VAEConfig):
        super().__init__()
        chans = _level_channels(cfg)
        self.conv_in = CausalConv3d(cfg.in_channels, chans[0], cfg.kernel_size, padding_mode=cfg.padding_mode)
        layers, cin = [], chans[0]
        for c, n, st, ss in zip(chans, cfg.encoder_blocks, cfg.temporal_strides, cfg.spatial_strides):
            for _ in range(n):
                layers.append(ResBlock(cfg, cin, c))
                cin = c
            if st > 1 or ss > 1:
                layers.append(Downsample(cfg, c, st, ss))
        self.layers = nn.ModuleList(layers)
        self.norm_out = FrameGroupNorm(cfg.norm_groups, cin)
        self.conv_out = nn.Conv3d(cin, 2 * cfg.latent_channels, 1)  # mean and log-variance

    def forward(self, x):  # (B, 3, F, H, W)
        x = self.conv_in(x)
        for layer in self.layers:
            x = layer(x)
        return self.conv_out(F.silu(self.norm_out(x)))  # (B, 2Z, f, h, w)


class Decoder(nn.Module):
    def __init__(self, cfg: VAEConfig):
        super().__init__()
        chans, adaptive = _level_channels(cfg), cfg.adaptive_norm_decoder
        self.conv_in = CausalConv3d(cfg.latent_channels, chans[-1], cfg.kernel_size, padding_mode=cfg.padding_mode)
        layers, cin = [], chans[-1]
        levels = zip(chans, cfg.decoder_blocks, cfg.temporal_strides, cfg.spatial_strides)
        for c, n, st, ss in reversed(list(levels)):
            for _ in range(n):
                layers.append(ResBlock(cfg, cin, c, adaptive))
                cin = c
            if st > 1 or ss > 1:
                layers.append(Upsample(cfg, c, st, ss))
        self.layers = nn.ModuleList(layers)
        self.norm_out = make_norm(cfg, cin, adaptive)
        self.conv_out = CausalConv3d(cin, cfg.in_channels, cfg.kernel_size, padding_mode=cfg.padding_mode)

    def forward(self, z):  # (B, Z, f, h, w)
        x = self.conv_in(z)
        for layer in self.layers:
            x = layer(x, z) if isinstance(layer, ResBlock) else layer(x)
        return self.conv_out(F.silu(self.norm_out(x, z)))  # (B, 3, F, H, W)


class CausalVAE(nn.Module, ClipGeometry):
    """MAGVIT-v2 style causal 3D-conv autoencoder with a KL bottleneck (paper Table 5)."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        self.cfg = cfg
        self.temporal_compression = cfg.temporal_compression
        self.spatial_compression = cfg.spatial_compression
        self.latent_channels = cfg.latent_channels
        self.encoder, self.decoder = Encoder(cfg), Decoder(cfg)

    def encode_dist(self, video):  # (B, 3, F, H, W) -> 2 x (B, Z, f, h, w)
        self.check_clip(*video.shape[2:])
        mean, logvar = self.encoder(video).chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    def encode(self, video, sample: bool = False):
        mean, logvar = self.encode_dist(video)
        if not sample:
            return mean
        return mean + torch.randn_like(mean) * (0.5 * logvar).exp()

    def decode(self, latents):  # (B, Z, f, h, w) -> (B, 3, F, H, W)
        return self.decoder(latents)

    def forward(self, video):
        """Training pass: reconstruction from a posterior sample, and the KL to N(0, I)."""
        mean, logvar = self.encode_dist(video)
        z = mean + torch.randn_like(mean) * (0.5 * logvar).exp()
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).mean()
        return self.decode(z), kl


# ---------------------------------------------------------------------------------------
# diffusers adapter (pretrained video VAEs such as Wan 2.1's)
# ---------------------------------------------------------------------------------------


class DiffusersVideoVAE(nn.Module, ClipGeometry):
    """Wraps a diffusers `AutoencoderKLWan`; latents are normalized with its mean and std."""

    def __init__(self, vae):
        super().__init__()
        self.vae = vae.eval().requires_grad_(False)
        cfg = vae.config
        self.temporal_compression = int(cfg.scale_factor_temporal or 2 ** sum(cfg.temperal_downsample))
        self.spatial_compression = int(cfg.scale_factor_spatial or 2 ** (len(cfg.dim_mult) - 1))
        self.latent_channels = int(cfg.z_dim)
        stat = lambda v: torch.tensor(v, dtype=torch.float32).view(1, -1, 1, 1, 1)
        self.register_buffer("mean", stat(cfg.latents_mean), persistent=False)
        self.register_buffer("std", stat(cfg.latents_std), persistent=False)

    @classmethod
    def from_pretrained(cls, spec: str) -> "DiffusersVideoVAE":
        from diffusers import AutoencoderKLWan

        from model.encoders import _load

        return cls(_load(AutoencoderKLWan, spec))

    @torch.no_grad()
    def encode(self, video):  # (B, 3, F, H, W) -> (B, Z, f, h, w)
        self.check_clip(*video.shape[2:])
        z = self.vae.encode(video).latent_dist.mode()
        return (z - self.mean) / self.std

    @torch.no_grad()
    def decode(self, latents):
        return self.vae.decode(latents * self.std + self.mean).sample.clamp(-1.0, 1.0)


def build_autoencoder(kind: str, config: dict | None = None, spec: str | None = None) -> nn.Module:
    """The one place that turns a saved autoencoder description into a module."""
    if kind == "magvit":
        return CausalVAE(VAEConfig.from_dict(config or {}))
    if kind == "diffusers":
        return DiffusersVideoVAE.from_pretrained(spec)
    raise ValueError(f"unknown autoencoder kind {kind!r}; expected 'magvit' or 'diffusers'")


def count_parameters(module: nn.Module) -> int:
    return sum(math.prod(p.shape) for p in module.parameters())

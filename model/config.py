"""Frozen configs and named presets for the personalization model (paper B.1, Tables 5-6).

Every default carries its source: "paper Table N" when the paper states it, "ours" when the
paper is silent and we chose. The resolved config is saved inside every checkpoint
(model/checkpoint.py), so a preset can change later without breaking old checkpoints.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace


def _from_dict(cls, d: dict):
    """Rebuild a config from `asdict` output, turning lists back into tuples."""
    names = {f.name for f in fields(cls)}
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in names})


# ---------------------------------------------------------------------------------------
# Video autoencoder (MAGVIT-v2 style causal 3D-conv KL autoencoder)
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VAEConfig:
    in_channels: int = 3  # RGB
    base_channels: int = 16  # paper Table 5
    channel_multipliers: tuple[int, ...] = (1, 4, 16, 32, 64)  # paper Table 5
    encoder_blocks: tuple[int, ...] = (1, 1, 2, 8, 8)  # paper Table 5
    decoder_blocks: tuple[int, ...] = (4, 4, 4, 4, 4)  # paper Table 5
    temporal_strides: tuple[int, ...] = (1, 2, 2, 2, 1)  # paper Table 5 "stride of frame"
    spatial_strides: tuple[int, ...] = (2, 2, 2, 2, 1)  # paper Table 5 "stride of h and w"
    latent_channels: int = 32  # paper Table 5 "bottleneck channels"
    padding_mode: str = "replicate"  # paper Table 5
    adaptive_norm_decoder: bool = True  # paper Table 5 "adaptive norm (decoder only)"
    kernel_size: int = 3  # ours: MAGVIT-v2 uses 3x3x3 convolutions
    norm_groups: int = 8  # ours: GroupNorm groups (channels must divide)

    @property
    def temporal_compression(self) -> int:
        return math.prod(self.temporal_strides)

    @property
    def spatial_compression(self) -> int:
        return math.prod(self.spatial_strides)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "VAEConfig":
        return _from_dict(cls, d)


VAE_CONFIGS = {
    "magvit-paper": VAEConfig(),
    # CPU preset: 4x8x8 compression keeps test clips (9 frames, 32x32) at a few latent tokens.
    "magvit-tiny": VAEConfig(
        base_channels=8,
        channel_multipliers=(1, 2, 4),
        encoder_blocks=(1, 1, 1),
        decoder_blocks=(1, 1, 1),
        temporal_strides=(1, 2, 2),
        spatial_strides=(2, 2, 2),
        latent_channels=4,
        norm_groups=4,
    ),
}


# ---------------------------------------------------------------------------------------
# Personalization DiT
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DiTConfig:
    in_channels: int = 32  # paper Table 5, = autoencoder bottleneck channels
    patch_size: tuple[int, int, int] = (1, 2, 2)  # paper Table 5, (frames, h, w)
    width: int = 4096  # paper Table 5 "patch / latent token channels"
    depth: int = 32  # paper Table 5
    heads: int = 128  # paper Table 5
    cond_width: int = 1024  # paper Table 5 "conditioning channels"
    mlp_ratio: float = 4.0  # ours: the DiT default; the paper does not state it
    text_dim: int = 4096  # ours: hidden size of our default text encoder, T5-v1.1-XXL
    image_dim: int = 1024  # paper Table 6 "tokens channels"
    word_tokens: int = 8  # ours (issue 5): entity word tokens kept per reference
    # ours: learnable index embeddings; paper A.3 draws up to 3 entities x 3 images + background
    # (10 slots), Table 5 lists 6 conditioning subjects for stage II: 6 x 3 + 1 = 19.
    max_refs: int = 19
    binding: str = "word"  # "word" (paper 3.2) or "none" (the no-word-token ablation)
    window_size: int | None = 6144  # paper Table 5 "window size 6144 (center)"; None = full
    self_conditioning: bool = True  # paper Table 5
    rope_theta: float = 10000.0  # ours: the RoFormer default
    fused_layernorm: bool = True  # paper Table 5; falls back to torch LayerNorm without apex
    # paper Table 7 "dropout 0.1", read as network dropout on each block sublayer's output;
    # the conditioning dropout of B.2 is FlowConfig.drop_text / drop_image.
    dropout: float = 0.1

    def __post_init__(self):
        if self.width % self.heads:
            raise ValueError(f"width {self.width} is not divisible by heads {self.heads}")
        if self.binding not in ("word", "none"):
            raise ValueError(f"binding must be 'word' or 'none', got {self.binding!r}")

    @property
    def head_dim(self) -> int:
        return self.width // self.heads

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "DiTConfig":
        return _from_dict(cls, d)


DIT_CONFIGS = {
    "dit-paper": DiTConfig(),  # paper Table 5, about 10.79B parameters
    # Smaller presets share the paper's layout; widths and depths follow DiT's B and S sizes.
    "dit-b": DiTConfig(width=768, depth=12, heads=12, cond_width=768, window_size=None),
    "dit-s": DiTConfig(width=384, depth=12, heads=6, cond_width=384, window_size=None),
    "dit-tiny": DiTConfig(
        in_channels=4,
        width=64,
        depth=2,
        heads=4,
        cond_width=32,
        text_dim=32,
        image_dim=32,
        word_tokens=4,
        max_refs=4,
        window_size=None,
        dropout=0.0,
    ),
}


def dit_config(name: str, **overrides) -> DiTConfig:
    """A preset with some fields replaced, e.g. to match a text encoder's width."""
    if name not in DIT_CONFIGS:
        raise KeyError(f"unknown DiT preset {name!r}; known: {sorted(DIT_CONFIGS)}")
    return replace(DIT_CONFIGS[name], **overrides)


# ---------------------------------------------------------------------------------------
# Rectified flow and sampling
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FlowConfig:
    timestep_sampling: str = "logit_normal"  # ours: SD3's best; "uniform" also supported
    logit_mean: float = 0.0  # SD3 logit-normal location
    logit_std: float = 1.0  # SD3 logit-normal scale
    shift: float | None = None  # fixed time shift; None = resolution-dependent (below)
    base_tokens: int = 432  # ours: tokens of 17x288x512 at 8x16x16 and 1x2x2 patches -> shift 1
    drop_text: float = 0.1  # paper B.2
    drop_image: float = 0.1  # paper B.2
    self_cond_prob: float = 0.9  # paper Table 5

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "FlowConfig":
        return _from_dict(cls, d)


@dataclass(frozen=True)
class SamplerConfig:
    steps: int = 128  # paper B.3: 128 for evaluation, 256 for visuals
    text_scale: float = 8.0  # paper B.3
    image_scale: float = 2.5  # paper B.3
    interval: tuple[float, float] = (0.15, 0.5)  # paper B.3, closed interval on shifted t
    # Which time the interval is read on (model/README): "noise_at_1" = our shifted t (t = 1
    # noise); "data_at_1" = 1 - shifted t, the cited guidance-interval work counting the other way.
    interval_reading: str = "noise_at_1"
    dynamic_threshold: bool = False  # ours: off by default; the paper names it future work
    threshold_percentile: float = 0.995  # ours: Imagen's value
    threshold_floor: float = 3.0  # ours: ~3 std of unit-variance latents, Imagen's "1" for latents

    def __post_init__(self):
        if self.interval_reading not in INTERVAL_READINGS:
            raise ValueError(f"interval_reading must be one of {INTERVAL_READINGS}, got {self.interval_reading!r}")


INTERVAL_READINGS = ("noise_at_1", "data_at_1")

"""Building what a training run needs from its `TrainConfig`: encoders, autoencoder, DiT,
the stage's trainable parameters, the optimizer and the lr schedule (paper B.2, Table 7)."""
from __future__ import annotations

import math
from pathlib import Path

import torch

from model.dit import is_reference_path
from training.config import TrainConfig


TINY_NAMES = ("t5", "clip", "dinov2", "mae", "wan_vae")


def tiny_encoders(out: Path) -> dict[str, str]:
    """Tiny random encoders, written once per run and reused: the tiny tokenizer's training is
    not deterministic, so every worker (and a resumed run) must read the same files."""
    from model.tiny import write_tiny_model_checkpoints

    if all((out / name).is_dir() for name in TINY_NAMES):
        return {name: str(out / name) for name in TINY_NAMES}
    return write_tiny_model_checkpoints(out)


def encoder_configs(cfg: TrainConfig, run_dir: Path) -> dict:
    """{"text": ..., "image": ...} encoder settings; "tiny" writes random tiny checkpoints."""
    from model.encoders import ImageEncoderConfig, TextEncoderConfig

    text_spec, image_spec = cfg.text_encoder, cfg.image_encoder_spec
    if cfg.text_encoder == "tiny":
        paths = tiny_encoders(Path(run_dir) / "encoders")
        text_spec, image_spec = paths["t5"], image_spec or paths.get(cfg.image_encoder)
    return {"text": TextEncoderConfig(spec=str(text_spec), max_length=cfg.text_max_length).to_dict(),
            "image": ImageEncoderConfig(kind=cfg.image_encoder, spec=image_spec and str(image_spec),
                                        image_size=cfg.image_size).to_dict()}


def build_image_encoder(encoders: dict):
    """The frozen image encoder (paper Table 6), or the toy's fixed patchify ("patches")."""
    from model.encoders import ImageEncoder, ImageEncoderConfig

    if encoders["image"]["kind"] == "patches":
        from training.toy import PatchEncoder

        return PatchEncoder()
    return ImageEncoder(ImageEncoderConfig(**encoders["image"]))


def build_autoencoder(cfg: TrainConfig):
    """A VAE_CONFIGS preset (random weights, seeded) or an `alchemist train-vae` checkpoint."""
    from model.autoencoder import CausalVAE
    from model.checkpoint import load_vae
    from model.config import VAE_CONFIGS

    if cfg.vae == "pixels":
        from training.toy import PixelSpace

        return PixelSpace()
    if cfg.vae in VAE_CONFIGS:
        torch.manual_seed(cfg.seed)
        return CausalVAE(VAE_CONFIGS[cfg.vae]).eval().requires_grad_(False)
    return load_vae(cfg.vae).requires_grad_(False)


def build_dit(cfg: TrainConfig, vae, text_dim: int, image_dim: int):
    from model.checkpoint import load_weights
    from model.config import dit_config
    from model.dit import DiT

    from training.conditioning import max_slots

    overrides = dict(in_channels=vae.latent_channels, text_dim=text_dim, image_dim=image_dim) | cfg.dit_overrides
    dit_cfg = dit_config(cfg.dit, **overrides)
    if cfg.uses_references and max_slots(cfg.conditioning) > dit_cfg.max_refs:
        raise ValueError(f"config {cfg.name!r} draws up to {max_slots(cfg.conditioning)} reference slots but "
                         f"{cfg.dit} has max_refs={dit_cfg.max_refs}; raise it in dit_overrides")
    torch.manual_seed(cfg.seed)
    dit = DiT(dit_cfg)
    if cfg.init_from:
        dit.load_state_dict(load_weights(cfg.init_from, "dit"))
    return dit


def set_trainable(dit, trains: str) -> list[str]:
    """Stage I: the backbone; II: the reference path only; III: everything. Returns the names."""
    names = []
    for name, p in dit.named_parameters():
        ref = is_reference_path(name)
        p.requires_grad_(trains == "all" or (trains == "reference") == ref)
        if p.requires_grad:
            names.append(name)
    return names


def build_optimizer(dit, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW over the trainable parameters only: a frozen parameter gets no weight decay."""
    params = [p for p in dit.parameters() if p.requires_grad]
    return torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then constant (paper Table 7) or cosine down to zero (the toy)."""
    if step < cfg.warmup:
        return (step + 1) / cfg.warmup
    if cfg.lr_schedule == "constant":
        return 1.0
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def build_schedule(optimizer, cfg: TrainConfig):
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, cfg))


def enable_activation_checkpointing(dit) -> None:
    """Recompute each block in the backward pass (GPU memory for long clips)."""
    from torch.utils.checkpoint import checkpoint

    for block in dit.blocks:
        forward = block.forward
        block.forward = lambda *a, _f=forward: checkpoint(_f, *a, use_reentrant=False)

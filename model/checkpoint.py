"""Model bundles: one file holding the DiT, the autoencoder and the encoder settings.

The resolved configs are saved inside every checkpoint (HOUSE_STYLE), so loading never
depends on today's presets. Encoders are not copied in: the bundle names them (hub id or
local directory) and they are loaded through `model.encoders._load`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from model.autoencoder import CausalVAE, DiffusersVideoVAE, build_autoencoder
from model.config import DiTConfig, FlowConfig, SamplerConfig, VAEConfig, dit_config
from model.dit import DiT
from model.encoders import ImageEncoder, ImageEncoderConfig, TextEncoder, TextEncoderConfig

BUNDLE_FORMAT = "alchemist-model-bundle/1"
VAE_FORMAT = "alchemist-vae/1"


def _atomic_save(obj, path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _describe_vae(vae, vae_spec: str | None) -> dict:
    if isinstance(vae, CausalVAE):
        return {"kind": "magvit", "config": vae.cfg.to_dict(), "state_dict": vae.state_dict()}
    if isinstance(vae, DiffusersVideoVAE):
        if vae_spec is None:
            raise ValueError("a diffusers autoencoder is saved by reference: pass vae_spec")
        return {"kind": "diffusers", "spec": vae_spec}
    raise TypeError(f"cannot save autoencoder of type {type(vae).__name__}")


def save_bundle(path, dit: DiT, vae, encoders_config: dict, flow_config: FlowConfig = FlowConfig(),
                sampler_config: SamplerConfig = SamplerConfig(), vae_spec: str | None = None,
                extra: dict | None = None) -> Path:
    """encoders_config: {"text": TextEncoderConfig dict, "image": ImageEncoderConfig dict}."""
    bundle = {
        "format": BUNDLE_FORMAT,
        "dit": {"config": dit.cfg.to_dict(), "state_dict": dit.state_dict()},
        "vae": _describe_vae(vae, vae_spec),
        "encoders": encoders_config,
        "flow": flow_config.to_dict(),
        "sampler": {k: v for k, v in vars(sampler_config).items()},
        "extra": extra or {},
    }
    _atomic_save(bundle, path)
    return Path(path)


@dataclass
class Bundle:
    dit: DiT
    vae: torch.nn.Module
    text_encoder: TextEncoder | None
    image_encoder: ImageEncoder | None
    flow: FlowConfig
    sampler: SamplerConfig
    raw: dict  # everything saved, for output metadata


def load_bundle(path, device="cpu", with_encoders: bool = True) -> Bundle:
    raw = torch.load(path, map_location=device, weights_only=True)
    if raw.get("format") != BUNDLE_FORMAT:
        raise ValueError(f"{path} is not a model bundle (format {raw.get('format')!r})")
    dit = DiT(DiTConfig.from_dict(raw["dit"]["config"]))
    dit.load_state_dict(raw["dit"]["state_dict"])
    vae_desc = raw["vae"]
    vae = build_autoencoder(vae_desc["kind"], vae_desc.get("config"), vae_desc.get("spec"))
    if "state_dict" in vae_desc:
        vae.load_state_dict(vae_desc["state_dict"])
    text = image = None
    if with_encoders:
        text = TextEncoder(TextEncoderConfig(**raw["encoders"]["text"]))
        image = ImageEncoder(ImageEncoderConfig(**raw["encoders"]["image"]))
        _check_widths(dit.cfg, text, image)
    sampler = dict(raw["sampler"], interval=tuple(raw["sampler"]["interval"]))
    modules = [m for m in (dit, vae, text, image) if m is not None]
    for m in modules:
        m.to(device).eval()
    raw = {k: v for k, v in raw.items() if k != "dit"} | {"dit": {"config": raw["dit"]["config"]}}
    raw["vae"] = {k: v for k, v in vae_desc.items() if k != "state_dict"}
    return Bundle(dit, vae, text, image, FlowConfig.from_dict(raw["flow"]), SamplerConfig(**sampler), raw)


def _check_widths(cfg: DiTConfig, text: TextEncoder, image: ImageEncoder) -> None:
    for name, got, want in (("text", text.dim, cfg.text_dim), ("image", image.dim, cfg.image_dim)):
        if got != want:
            raise ValueError(f"the {name} encoder is {got} wide but the DiT expects {want}")


def save_vae(path, vae: CausalVAE, extra: dict | None = None) -> Path:
    _atomic_save({"format": VAE_FORMAT, "config": vae.cfg.to_dict(), "state_dict": vae.state_dict(),
                  "extra": extra or {}}, path)
    return Path(path)


def load_vae(path, device="cpu") -> CausalVAE:
    raw = torch.load(path, map_location=device, weights_only=True)
    if raw.get("format") != VAE_FORMAT:
        raise ValueError(f"{path} is not an autoencoder checkpoint (format {raw.get('format')!r})")
    vae = CausalVAE(VAEConfig.from_dict(raw["config"]))
    vae.load_state_dict(raw["state_dict"])
    return vae.to(device).eval()


def make_tiny_bundle(out_dir, image_kind: str = "dinov2", seed: int = 0) -> Path:
    """A random tiny bundle (tiny DiT, tiny bundled VAE, tiny encoders) for tests and demos."""
    from model.config import VAE_CONFIGS
    from model.tiny import TINY_IMAGE_SIZE, write_tiny_model_checkpoints

    out_dir = Path(out_dir)
    paths = write_tiny_model_checkpoints(out_dir / "encoders")
    torch.manual_seed(seed)
    vae = CausalVAE(VAE_CONFIGS["magvit-tiny"])
    dit = DiT(dit_config("dit-tiny", in_channels=vae.latent_channels))
    encoders = {
        "text": TextEncoderConfig(spec=paths["t5"], max_length=32).to_dict(),
        "image": ImageEncoderConfig(kind=image_kind, spec=paths[image_kind],
                                    image_size=TINY_IMAGE_SIZE[image_kind]).to_dict(),
    }
    return save_bundle(out_dir / "tiny_bundle.pt", dit, vae, encoders, FlowConfig(shift=1.0),
                       SamplerConfig(steps=8), extra={"note": "random tiny bundle"})

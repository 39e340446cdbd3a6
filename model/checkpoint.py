"""Model bundles: one checkpoint format for training, sampling and the benchmarks.

A bundle is a directory:

    config.json            resolved configs (DiT, autoencoder, encoders, flow, sampler), extra,
                           and for training checkpoints the run's resolved config, step and
                           data position
    weights.safetensors    "dit.*" and "vae.*" tensors (and "ema.*" when EMA is on)
    trainer_state.pt       optimizer and RNG state (training checkpoints only; see training/)

The resolved configs are saved inside every checkpoint (model/README.md), so loading never
depends on today's presets, and `read_bundle_config` answers questions about a checkpoint
(sizes, widths, the text encoder) without reading its weights. Encoders are not copied in:
the bundle names them (hub id or local directory) and they load through `model.encoders._load`.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from model.autoencoder import CausalVAE, ClipGeometry, DiffusersVideoVAE, build_autoencoder
from model.config import DiTConfig, FlowConfig, SamplerConfig, VAEConfig, dit_config
from model.dit import DiT
from model.encoders import ImageEncoder, ImageEncoderConfig, TextEncoder, TextEncoderConfig

BUNDLE_FORMAT = "alchemist-model-bundle/2"
VAE_FORMAT = "alchemist-vae/1"
CONFIG_FILE, WEIGHTS_FILE = "config.json", "weights.safetensors"


def _atomic_save(obj, path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


GEOMETRY = ("temporal_compression", "spatial_compression", "latent_channels")


def _describe_vae(vae, vae_spec: str | None) -> dict:
    geometry = {name: int(getattr(vae, name)) for name in GEOMETRY}
    if hasattr(vae, "bundle_description"):  # e.g. the toy's pixel space (training/toy.py)
        return vae.bundle_description() | {"geometry": geometry}
    if isinstance(vae, CausalVAE):
        return {"kind": "magvit", "config": vae.cfg.to_dict(), "geometry": geometry}
    if isinstance(vae, DiffusersVideoVAE):
        if vae_spec is None:
            raise ValueError("a diffusers autoencoder is saved by reference: pass vae_spec")
        return {"kind": "diffusers", "spec": vae_spec, "geometry": geometry}
    raise TypeError(f"cannot save autoencoder of type {type(vae).__name__}")


class SavedGeometry(ClipGeometry):
    """The clip sizes a bundle's autoencoder accepts, read from config.json alone."""

    def __init__(self, raw: dict):
        for name in GEOMETRY:
            setattr(self, name, raw["vae"]["geometry"][name])


def bundle_dir(path) -> Path:
    """A bundle directory, also when given its config.json."""
    path = Path(path)
    return path.parent if path.name == CONFIG_FILE else path


def _weights(dit: DiT, vae, ema: dict | None) -> dict[str, torch.Tensor]:
    tensors = {f"dit.{k}": v for k, v in dit.state_dict().items()}
    if isinstance(vae, CausalVAE):
        tensors |= {f"vae.{k}": v for k, v in vae.state_dict().items()}
    tensors |= {f"ema.{k}": v for k, v in (ema or {}).items()}
    return {k: v.detach().contiguous().cpu() for k, v in tensors.items()}


def save_bundle(path, dit: DiT, vae, encoders_config: dict, flow_config: FlowConfig = FlowConfig(),
                sampler_config: SamplerConfig = SamplerConfig(), vae_spec: str | None = None,
                extra: dict | None = None, train: dict | None = None, ema: dict | None = None) -> Path:
    """Write a bundle directory atomically (a temporary directory renamed into place).

    encoders_config: {"text": TextEncoderConfig dict, "image": ImageEncoderConfig dict};
    train: the training run's resolved config, step and data position; ema: EMA weights.
    """
    from safetensors.torch import save_file

    path = bundle_dir(path)
    config = {
        "format": BUNDLE_FORMAT,
        "dit": {"config": dit.cfg.to_dict()},
        "vae": _describe_vae(vae, vae_spec),
        "encoders": encoders_config,
        "flow": flow_config.to_dict(),
        "sampler": dict(vars(sampler_config)),
        "extra": extra or {},
        "train": train or {},
    }
    tmp = path.with_name(f".{path.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(_weights(dit, vae, ema), tmp / WEIGHTS_FILE)
    (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2))
    if path.exists():
        shutil.rmtree(path)
    os.replace(tmp, path)
    return path


@dataclass
class Bundle:
    dit: DiT
    vae: torch.nn.Module
    text_encoder: TextEncoder | None
    image_encoder: ImageEncoder | None
    flow: FlowConfig
    sampler: SamplerConfig
    raw: dict  # config.json, for output metadata
    path: Path | None = None


def read_bundle_config(path) -> dict:
    """config.json of a bundle, without touching its weights."""
    config_path = bundle_dir(path) / CONFIG_FILE
    if not config_path.is_file():
        raise FileNotFoundError(f"{bundle_dir(path)} is not a model bundle (no {CONFIG_FILE})")
    raw = json.loads(config_path.read_text())
    if raw.get("format") != BUNDLE_FORMAT:
        raise ValueError(f"{path} is not a model bundle (format {raw.get('format')!r})")
    return raw


def sampler_config(raw: dict) -> SamplerConfig:
    return SamplerConfig(**dict(raw["sampler"], interval=tuple(raw["sampler"]["interval"])))


def load_weights(path, prefix: str, device="cpu") -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    tensors = load_file(bundle_dir(path) / WEIGHTS_FILE, device=str(device))
    return {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


def load_bundle(path, device="cpu", with_encoders: bool = True, weights: str = "dit") -> Bundle:
    """weights: "dit" (the trained weights) or "ema" (their moving average, if saved)."""
    raw = read_bundle_config(path)
    dit = DiT(DiTConfig.from_dict(raw["dit"]["config"]))
    state = load_weights(path, weights, device)
    if not state:
        raise ValueError(f"{path} holds no {weights!r} weights")
    dit.load_state_dict(state)
    vae = build_autoencoder(raw["vae"]["kind"], raw["vae"].get("config"), raw["vae"].get("spec"))
    if raw["vae"]["kind"] == "magvit":
        vae.load_state_dict(load_weights(path, "vae", device))
    text = image = None
    if with_encoders:
        text = TextEncoder(TextEncoderConfig(**raw["encoders"]["text"]))
        image = ImageEncoder(ImageEncoderConfig(**raw["encoders"]["image"]))
        _check_widths(dit.cfg, text, image)
    for m in (dit, vae, text, image):
        if m is not None:
            m.to(device).eval()
    return Bundle(dit, vae, text, image, FlowConfig.from_dict(raw["flow"]), sampler_config(raw), raw,
                  bundle_dir(path))


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
    return save_bundle(out_dir / "tiny_bundle", dit, vae, encoders, FlowConfig(shift=1.0),
                       SamplerConfig(steps=8), extra={"note": "random tiny bundle"})

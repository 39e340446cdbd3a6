"""`alchemist train-vae`: train the bundled causal autoencoder on clips from a video folder.

Loss = L1 reconstruction + kl_weight * KL(q(z|x) || N(0, I)) [+ perceptual_weight * feature
distance under a frozen image encoder, per frame]. A linear story: setup_* helpers, then
the loop.
"""
from __future__ import annotations

import itertools
import time

import torch
import torch.nn.functional as F
from einops import rearrange

from model.autoencoder import CausalVAE
from model.config import VAE_CONFIGS

# ---------------------------------------------------------------------------------------
# Setup
# ---------------------------------------------------------------------------------------


def setup_model(preset: str) -> CausalVAE:
    if preset not in VAE_CONFIGS:
        raise SystemExit(f"unknown autoencoder preset {preset!r}; known: {sorted(VAE_CONFIGS)}")
    return CausalVAE(VAE_CONFIGS[preset])


def setup_data(args, vae: CausalVAE):
    from model.sample_cli import parse_size
    from model.video_io import VideoFolderClips

    width, height = parse_size(args.size)
    vae.check_clip(args.frames, height, width)
    clips = VideoFolderClips(args.videos, args.frames, height, width, seed=args.seed)
    return torch.utils.data.DataLoader(clips, batch_size=args.batch_size)


def setup_perceptual(args):
    if not args.perceptual_encoder:
        return None
    from model.encoders import ImageEncoder, ImageEncoderConfig

    return ImageEncoder(ImageEncoderConfig(kind=args.perceptual_kind, spec=args.perceptual_encoder))


# ---------------------------------------------------------------------------------------
# Loss and loop
# ---------------------------------------------------------------------------------------


def perceptual_loss(encoder, recon, target):  # (B, 3, F, H, W) in [-1, 1]
    frames = lambda v: rearrange((v + 1) / 2, "b c f h w -> (b f) c h w")
    return F.mse_loss(encoder.features(frames(recon)), encoder.features(frames(target)).detach())


def vae_loss(vae, clip, kl_weight: float, perceptual=None, perceptual_weight: float = 0.0) -> dict:
    recon, kl = vae(clip)
    rec = (recon - clip).abs().mean()
    loss = rec + kl_weight * kl
    out = {"rec": rec.detach(), "kl": kl.detach()}
    if perceptual is not None:
        p = perceptual_loss(perceptual, recon, clip)
        loss = loss + perceptual_weight * p
        out["perceptual"] = p.detach()
    out["loss"] = loss
    return out


def train(args) -> int:
    from model.checkpoint import save_vae

    torch.manual_seed(args.seed)
    vae = setup_model(args.preset)
    data = setup_data(args, vae)
    perceptual = setup_perceptual(args)
    opt = torch.optim.AdamW(vae.parameters(), lr=args.lr, betas=(0.9, 0.99), weight_decay=0.01)
    start = time.perf_counter()
    for step, clip in enumerate(itertools.islice(data, args.steps), start=1):
        losses = vae_loss(vae, clip, args.kl_weight, perceptual, args.perceptual_weight)
        opt.zero_grad(set_to_none=True)
        losses["loss"].backward()
        opt.step()
        if step % args.log_every == 0 or step == args.steps:
            parts = " ".join(f"{k}={v.item():.4f}" for k, v in losses.items())
            print(f"step {step} {parts} ({time.perf_counter() - start:.1f}s)", flush=True)
    save_vae(args.out, vae, extra={"preset": args.preset, "steps": args.steps, "frames": args.frames,
                                   "size": args.size, "videos": str(args.videos)})
    print(f"wrote {args.out}")
    return 0

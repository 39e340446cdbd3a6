"""`alchemist bench generate`: our sampler over one mode's conditioning lists.

Writes `<out>/<sample>.mp4` (+ `<sample>.json` with the prompt, references, seed and sampler
settings): the layout `bench eval` reads. Resumable: a sample whose mp4 exists is skipped.
Batched: `batch_size` samples share each DiT forward; their conditionings are padded to the
same number of reference slots (padded slots are masked, as in training) and each sample's
noise comes from its own seed, so a sample's video does not depend on its batch-mates.
Reference PNGs are RGBA; `model.video_io.load_image` turns them into model input.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from curation.errors import OperatorError
from evaluation.msrvtt import modes

log = logging.getLogger("alchemist.bench")


@dataclass
class GenerateSettings:
    frames: int = 17
    width: int = 256
    height: int = 144
    steps: int = 64
    seed: int = 0  # sample i uses seed + i (its index in the mode's lists)
    batch_size: int = 4
    device: str = "cpu"


def _pad(t: torch.Tensor, dim: int, size: int, value) -> torch.Tensor:
    if t.shape[dim] == size:
        return t
    shape = list(t.shape)
    shape[dim] = size - t.shape[dim]
    return torch.cat([t, torch.full(shape, value, dtype=t.dtype, device=t.device)], dim=dim)


def stack_conditionings(conds: list):
    """Batch single-sample conditionings: pad text to the longest prompt and references to the
    most slots; padding is masked (text_mask / ref_mask False, word_index -1)."""
    from model.personalization import Conditioning

    length = max(c.text.shape[1] for c in conds)
    slots = max(c.ref_tokens.shape[1] for c in conds)
    return Conditioning(
        text=torch.cat([_pad(c.text, 1, length, 0.0) for c in conds]),  # (B, L, Dt)
        text_mask=torch.cat([_pad(c.text_mask, 1, length, False) for c in conds]),  # (B, L)
        ref_tokens=torch.cat([_pad(c.ref_tokens, 1, slots, 0.0) for c in conds]),  # (B, R, l, c)
        ref_mask=torch.cat([_pad(c.ref_mask, 1, slots, False) for c in conds]),  # (B, R)
        word_index=torch.cat([_pad(c.word_index, 1, slots, -1) for c in conds]),  # (B, R, K)
    )


def refs_of(benchmark: Path, conditions: list[modes.Condition]) -> list[tuple[str, str]]:
    return [(c.word, str(benchmark / p)) for c in conditions for p in c.images]


def sample_batch(bundle, conds: list, seeds: list[int], s: GenerateSettings) -> list[torch.Tensor]:
    """One batched sampling run -> per sample (3, F, H, W) in [-1, 1]."""
    from model.rectified_flow import RectifiedFlow

    shape = bundle.vae.latent_shape(s.frames, s.height, s.width)
    noise = torch.cat([torch.randn((1, *shape), generator=torch.Generator().manual_seed(seed))
                       for seed in seeds]).to(s.device)  # (B, C, F', H', W')
    sampler = replace(bundle.sampler, steps=s.steps)
    latents = RectifiedFlow(bundle.flow).sample(bundle.dit, noise, stack_conditionings(conds), sampler)
    with torch.no_grad():
        return list(bundle.vae.decode(latents))


def generate_mode(checkpoint: Path, benchmark: Path, mode: str, out: Path,
                  settings: GenerateSettings = GenerateSettings()) -> dict:
    from model.checkpoint import load_bundle
    from model.sample_cli import build_conditioning
    from model.video_io import to_uint8_frames, write_mp4

    benchmark, out = Path(benchmark), Path(out)
    if not Path(checkpoint).exists():
        raise OperatorError(f"--checkpoint {checkpoint} does not exist; train one or write a tiny one "
                            f"with model.checkpoint.make_tiny_bundle")
    lists = modes.load_mode(benchmark, mode)
    out.mkdir(parents=True, exist_ok=True)
    todo = [i for i, name in enumerate(lists.samples) if not (out / f"{name}.mp4").exists()]
    if todo:
        bundle = load_bundle(checkpoint, device=settings.device)
    for start in range(0, len(todo), max(1, settings.batch_size)):
        batch = todo[start:start + settings.batch_size]
        refs = [refs_of(benchmark, lists.conditions[i]) for i in batch]
        conds = [build_conditioning(bundle, lists.prompts[i], r, settings.device) for i, r in zip(batch, refs)]
        seeds = [settings.seed + i for i in batch]
        for i, r, seed, video in zip(batch, refs, seeds, sample_batch(bundle, conds, seeds, settings)):
            meta = {"sample": lists.samples[i], "prompt": lists.prompts[i], "refs": r, "seed": seed,
                    "frames": settings.frames, "size": [settings.width, settings.height],
                    "steps": settings.steps, "checkpoint": str(checkpoint), "mode": mode}
            # the JSON first: an mp4 present means its sample is complete
            (out / f"{lists.samples[i]}.json").write_text(json.dumps(meta, indent=1))
            write_mp4(to_uint8_frames(video), out / f"{lists.samples[i]}.mp4", metadata=meta)
        log.info("generated %d/%d", min(start + len(batch), len(todo)), len(todo))
    return {"mode": mode, "samples": len(lists.samples), "generated": len(todo), "out": str(out)}

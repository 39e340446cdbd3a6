"""Toy personalization checks (`make toy`): does a model trained by our trainer follow its
reference images, and does each reference reach the subject whose word it is bound to?

Sprite-colour toy: 4 frames of 16x16, a sprite (square) whose colour, one of K = 8 palette
colours, is given only by its reference image, never by the caption; fixed paths per
direction with at most +-1 px jitter per frame. Binding toy: a square and a bar, each with
its own reference colour; the two reference slots come in random order, so only the word
binding says which reference belongs to which sprite.

The model is our DiT in pixel space (`PixelSpace`: no autoencoder), references go through
`PatchEncoder` (a fixed patchify: the learned part is the DiT's personalization projection),
the text encoder is a frozen random tiny T5 (no pretrained encoder anywhere).
Evaluation on 64 held-out samples, the same noise for both references, 25 Euler steps,
guidance scale 1: the generated sprite's colour is the mean over frames of its core (per
frame, within the sprite's path region, the half of the sprite's pixel count farthest in
colour from the background; see `core_colour`).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from model.autoencoder import ClipGeometry
from model.model_registry import torch_threads

PALETTE = ((230, 25, 25), (25, 200, 40), (30, 60, 230), (240, 220, 30),
           (230, 30, 220), (30, 220, 220), (250, 140, 20), (245, 245, 245))  # K = 8
BACKGROUND = (40, 40, 40)
FRAMES, SIZE, SPRITE = 4, 16, 5
JITTER_PX = 1  # a sprite's per-frame offset from its path
TOYS = ("sprite", "binding-word", "binding-none")
# One intra-op thread: the toy model gains nothing from more, spin-waiting threads made it
# ~4x slower on a busy 2-core machine, and results do not depend on the core count.
TOY_THREADS = 1


# ---------------------------------------------------------------------------------------
# Pixel space and the patch reference encoder
# ---------------------------------------------------------------------------------------


class PixelSpace(nn.Module, ClipGeometry):
    """The identity autoencoder: the DiT works on pixels in [-1, 1]."""

    temporal_compression, spatial_compression, latent_channels = 1, 1, 3

    def encode(self, video):  # (B, 3, F, H, W)
        return video

    def decode(self, latents):
        return latents.clamp(-1, 1)

    def bundle_description(self) -> dict:
        return {"kind": "pixels"}


class PatchEncoder(nn.Module):
    """(B, 3, h, w) in [0, 1] -> (B, (S/p)^2, 3 p^2): pad to a square with black, resize, patchify."""

    def __init__(self, image_size: int = 8, patch: int = 4):
        super().__init__()
        self.image_size, self.patch, self.dim = image_size, patch, 3 * patch * patch

    @torch.no_grad()
    def forward(self, images):
        h, w = images.shape[-2:]
        side = max(h, w)
        images = F.pad(images, ((side - w) // 2, side - w - (side - w) // 2, (side - h) // 2, side - h - (side - h) // 2))
        images = F.interpolate(images, size=(self.image_size,) * 2, mode="area")
        p = self.patch
        return F.unfold(images * 2 - 1, kernel_size=p, stride=p).transpose(1, 2)  # (B, l, 3 p^2)


# ---------------------------------------------------------------------------------------
# Datasets
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sprite:
    word: str  # "square" or "bar"
    colour: int  # palette index
    direction: int  # +1 right, -1 left
    row: int  # vertical position of the sprite's top


def sprite_mask(word: str) -> np.ndarray:
    mask = np.ones((SPRITE, SPRITE), dtype=bool)
    if word == "bar":
        mask[:, :1] = mask[:, -1:] = False
    return mask


def sprite_masks(sprites: list[Sprite], jitter: list[int]) -> list[np.ndarray]:
    """Per sprite: (F, H, W) bool where it is drawn."""
    out = []
    for s in sprites:
        m = np.zeros((FRAMES, SIZE, SIZE), dtype=bool)
        for f in range(FRAMES):
            step = 1 + 3 * f + jitter[f]  # 0..11: the sprite stays inside the frame
            left = step if s.direction > 0 else SIZE - SPRITE - step
            m[f, s.row : s.row + SPRITE, left : left + SPRITE] = sprite_mask(s.word)
        out.append(m)
    return out


def render(sprites: list[Sprite], jitter: list[int]) -> np.ndarray:
    video = np.empty((FRAMES, SIZE, SIZE, 3), dtype=np.uint8)
    video[:] = BACKGROUND
    for s, m in zip(sprites, sprite_masks(sprites, jitter)):
        video[m] = PALETTE[s.colour]
    return video


def reference_png(colour: int, size: int = 16) -> bytes:
    """A reference image: a square of the sprite's colour, whatever the sprite's shape. Shaped
    like its sprite, a reference told the binding toy which sprite it belonged to, and the
    binding=none ablation matched references to sprites by shape (0.95 both colours right);
    now only the word binding can say."""
    from training.synthetic import png

    rgba = np.zeros((size, size, 4), dtype=np.uint8)
    mask = np.kron(sprite_mask("square"), np.ones((size // SPRITE + 1,) * 2, dtype=bool))[:size, :size]
    rgba[mask] = (*PALETTE[colour], 255)
    return png(rgba)


def draw_clip(rng: random.Random, binding: bool) -> tuple[list[Sprite], list[int]]:
    direction = rng.choice((1, -1))
    if binding:
        a, b = rng.sample(range(len(PALETTE)), 2)
        sprites = [Sprite("square", a, direction, 1), Sprite("bar", b, -direction, 10)]
    else:
        sprites = [Sprite("square", rng.randrange(len(PALETTE)), direction, 5)]
    return sprites, [rng.choice(range(-JITTER_PX, JITTER_PX + 1)) for _ in range(FRAMES)]


def caption(sprites: list[Sprite]) -> str:
    moves = lambda d: "right" if d > 0 else "left"
    return " and ".join(f"a {s.word} moves {moves(s.direction)}" for s in sprites)


def write_toy_dataset(root, clips: int, seed: int, binding: bool) -> tuple[Path, list[dict]]:
    """A committed dataset of `clips` toy clips; returns it and each clip's sprites and jitter."""
    from curation import warehouse
    from curation.synthetic import write_video
    from training.synthetic import _table

    root, rng, meta = Path(root), random.Random(seed), []
    tables: dict[str, list[dict]] = {"clips": [], "entities": [], "references": []}
    for i in range(clips):
        sprites, jitter = draw_clip(rng, binding)
        key, text = f"toy{i:05d}:0-{1000 * FRAMES // 24}", caption(sprites)
        source = write_video(render(sprites, jitter), root / "videos" / f"{i:05d}.mp4", fps=24, crf=0)
        tables["clips"].append({"clip_key": key, "video_id": f"toy{i:05d}", "input_key": str(i), "source": str(source),
                                "caption": text, "start_s": 0.0, "end_s": FRAMES / 24, "fps": 24.0})
        for s in sprites:
            start = text.index(s.word)
            tables["entities"].append({"entity_key": f"{key}/{s.word}", "clip_key": key, "word": s.word,
                                       "type": "subject", "char_start": start, "char_end": start + len(s.word),
                                       "extractor": "toy"})
            tables["references"].append({"ref_key": f"{key}/{s.word}/frame1", "clip_key": key,
                                         "entity_key": f"{key}/{s.word}", "word": s.word, "frame_index": 1,
                                         "box_xyxy": [0.0, 0.0, 16.0, 16.0], "rgba_png": reference_png(s.colour),
                                         "mask_png": b"", "detector": "toy", "segmenter": "toy"})
        meta.append({"key": key, "caption": text, "sprites": sprites, "jitter": jitter})
    run_meta = {"config": {"profile": "toy"}, "code_version": "toy"}
    warehouse.write_shard(root, 0, {n: _table(n, rows) for n, rows in tables.items()}, run_meta)
    warehouse.commit(root, [0], run_meta)
    return root, meta


# ---------------------------------------------------------------------------------------
# Training (our trainer, our DiT) and evaluation
# ---------------------------------------------------------------------------------------


def toy_config(binding: str = "word", steps: int = 6000, two_subjects: bool = False, seed: int = 0):
    """The issue's measured-feasible settings: width 64, depth 4, 1x4x4 patches, logit-normal t
    with shift 3, reference dropped with p = 0.1, AdamW 1e-3 with a cosine schedule, batch 32."""
    from training.config import ConditioningConfig, TrainConfig

    slots = 2 if two_subjects else 1
    return TrainConfig(
        name=f"toy-{'binding' if two_subjects else 'sprite'}-{binding}", stage=3, dit="dit-tiny",
        dit_overrides={"patch_size": (1, 4, 4), "width": 64, "depth": 4, "heads": 4, "cond_width": 64,
                       "self_conditioning": False, "word_tokens": 4, "max_refs": slots, "binding": binding},
        vae="pixels", text_encoder="tiny", text_max_length=24, image_encoder="patches", buckets="toy",
        conditioning=ConditioningConfig(min_entities=slots, max_entities=slots, max_images=1, background_prob=0.0,
                                        all_entities=two_subjects),
        augment=False, flow={"shift": 3.0, "drop_text": 0.0, "drop_image": 0.1}, steps=steps, warmup=0,
        lr=1e-3, lr_schedule="cosine", grad_clip=1.0, use_cache=True, seed=seed, log_every=100,
        checkpoint_every=steps)


def core_colour(video: torch.Tensor, mask: np.ndarray) -> np.ndarray:
    """(3, F, H, W) in [-1, 1], (F, H, W) mask of the held-out clip's sprite -> mean RGB of the
    generated sprite's core: per frame, inside the sprite's path region (its mask widened by
    the jitter, because the generated sprite jitters independently of the held-out clip), the
    half of the sprite's pixel count whose colour lies farthest from the background's. Soft
    generated edges are blends with the background, so they never make that half."""
    from scipy.ndimage import binary_dilation

    widen = np.ones((1, 2 * JITTER_PX + 1), dtype=bool)  # the path is horizontal
    background = np.array(BACKGROUND) / 127.5 - 1
    pixels = []
    for f in range(mask.shape[0]):
        region = video[:, f][:, binary_dilation(mask[f], widen)].T.numpy()  # (N, 3)
        distance = np.linalg.norm(region - background, axis=1)
        pixels.append(region[np.argsort(-distance, kind="stable")[: (int(mask[f].sum()) + 1) // 2]])
    return np.concatenate(pixels).mean(axis=0)


def palette_unit() -> np.ndarray:
    return np.array(PALETTE, dtype=float) / 127.5 - 1


def conditioning_for(run, captions: list[str], refs: list[list[tuple[str, int]]]):
    """Conditioning of a batch: per sample, (word, palette index) reference slots in order."""
    from training.samples import Sample, conditioning, rgba, word_positions

    samples = []
    for i, (text, slots) in enumerate(zip(captions, refs)):
        positions = word_positions(run.text.tokenizer, run.cfg.text_max_length, text, [w for w, _ in slots])
        images = [rgba(reference_png(c))[:3] * rgba(reference_png(c))[3:] for _, c in slots]
        samples.append(Sample(f"eval{i}", i, text, None, refs=images, positions=positions))
    with torch.no_grad():
        text = run.text(captions)
    return conditioning(samples, text, run.image, run.dit.cfg, run.device)


def generate(run, captions, refs, seed: int) -> torch.Tensor:
    from model.config import SamplerConfig
    from model.sampler import euler_sample

    noise = torch.randn((len(captions), 3, FRAMES, SIZE, SIZE), generator=torch.Generator().manual_seed(seed))
    sampler = SamplerConfig(steps=25, text_scale=1.0, image_scale=1.0)
    run.dit.eval()
    return euler_sample(run.dit, noise, conditioning_for(run, captions, refs), sampler, shift=run.flow.cfg.shift)


def colour_scores(videos: torch.Tensor, masks: list[np.ndarray], wanted: list[int]):
    """Per sample: does the core colour's nearest palette colour equal `wanted`, and the distance."""
    pal = palette_unit()
    colours = np.stack([core_colour(v, m) for v, m in zip(videos, masks)])
    nearest = np.linalg.norm(colours[:, None] - pal[None], axis=-1).argmin(axis=1)
    return nearest == np.array(wanted), np.linalg.norm(colours - pal[wanted], axis=1), colours


def evaluate_sprite(run, heldout: list[dict], seed: int = 0) -> dict:
    """Matched and swapped references with the same noise; follow rate and colour error."""
    k = len(PALETTE)
    captions = [m["caption"] for m in heldout]
    masks = [sprite_masks(m["sprites"], m["jitter"])[0] for m in heldout]
    matched = [m["sprites"][0].colour for m in heldout]
    swapped = [(c + k // 2) % k for c in matched]
    out = {}
    for name, colours in (("matched", matched), ("swapped", swapped)):
        video = generate(run, captions, [[("square", c)] for c in colours], seed)
        follow, error, got = colour_scores(video, masks, colours)
        out[name] = {"follow_rate": float(follow.mean()), "colour_error": float(error.mean())}
        if name == "swapped":
            original = palette_unit()[matched]
            out[name]["distance_from_original"] = float(np.linalg.norm(got - original, axis=1).mean())
    return out


def evaluate_binding(run, heldout: list[dict], seed: int = 0) -> dict:
    """Both colours right under the true binding, and swapped when the words are swapped."""
    captions = [m["caption"] for m in heldout]
    rng = random.Random(seed)
    true, swapped, ok_true, ok_swapped = [], [], [], []
    for m in heldout:
        square, bar = m["sprites"]
        slots = [("square", square.colour), ("bar", bar.colour)]
        rng.shuffle(slots)  # slot order carries no information
        true.append(slots)
        swapped.append([("bar" if w == "square" else "square", c) for w, c in slots])
    masks = [sprite_masks(m["sprites"], m["jitter"]) for m in heldout]
    for refs, wanted, ok in ((true, lambda s, b: (s, b), ok_true), (swapped, lambda s, b: (b, s), ok_swapped)):
        video = generate(run, captions, refs, seed)
        for v, (m_sq, m_bar), meta in zip(video, masks, heldout):
            want_sq, want_bar = wanted(meta["sprites"][0].colour, meta["sprites"][1].colour)
            f_sq = colour_scores(v[None], [m_sq], [want_sq])[0][0]
            f_bar = colour_scores(v[None], [m_bar], [want_bar])[0][0]
            ok.append(bool(f_sq and f_bar))
    return {"true_binding": float(np.mean(ok_true)), "swapped_words": float(np.mean(ok_swapped))}


def run_toy(out: Path, two_subjects: bool, binding: str = "word", steps: int = 6000, clips: int = 512,
            heldout: int = 64, seed: int = 0, train: bool = True) -> dict:
    """Write the toy datasets, encode, train through `Run`, evaluate before and after.
    `train=False` evaluates the checkpoint an earlier run left in `out` instead (training is
    seeded, so it is the model this call would train)."""
    from training.cache import encode_dataset
    from training.checkpoints import latest_checkpoint, restore
    from training.trainer import Run

    out = Path(out)
    cfg = toy_config(binding, steps, two_subjects, seed)
    if train:
        train_set, _ = write_toy_dataset(out / "train", clips, seed, two_subjects)
        encode_dataset(train_set, cfg)
    _, held = write_toy_dataset(out / "heldout", heldout, seed + 1000, two_subjects)
    run = Run(cfg, [out / "train"], out / ("run" if train else "evaluation"))
    evaluate = evaluate_binding if two_subjects else evaluate_sprite
    report = {"config": cfg.name, "steps": steps, "untrained": evaluate(run, held)}
    if train:
        run.dit.train()
        run.fit()
        report["final_loss"] = run.last_metrics.get("loss")
    else:
        restore(run, latest_checkpoint(out / "run"))
    report["trained"] = evaluate(run, held)
    return report


def main(argv=None) -> int:
    """`make toy`: the sprite-colour toy, then the binding toy (`--ablation`: binding=none too)."""
    import argparse
    import json

    p = argparse.ArgumentParser(prog="python -m training.toy")
    p.add_argument("--out", default="toy_out")
    p.add_argument("--steps", type=int, default=6000, help="sprite toy steps (the binding toy: 8000)")
    p.add_argument("--binding-steps", type=int, default=8000)
    p.add_argument("--ablation", action="store_true", help="also train the binding=none ablation")
    p.add_argument("--evaluate-only", action="store_true",
                   help="evaluate the checkpoints an earlier run left in --out, without training")
    p.add_argument("--only", nargs="+", choices=TOYS, help="run these toys only")
    args = p.parse_args(argv)
    out, train = Path(args.out), not args.evaluate_only
    names = args.only or [t for t in TOYS if args.ablation or t != "binding-none"]
    settings = {"sprite": dict(two_subjects=False, steps=args.steps),
                "binding-word": dict(two_subjects=True, steps=args.binding_steps),
                "binding-none": dict(two_subjects=True, binding="none", steps=args.binding_steps)}
    with torch_threads(TOY_THREADS):
        reports = [run_toy(out / name, train=train, **settings[name]) for name in names]
    for r in reports:
        print(json.dumps(r, indent=2))
    suffix = "-".join(names) if args.only else "all"
    (out / f"toy_{'evaluation' if args.evaluate_only else 'results'}_{suffix}.json").write_text(
        json.dumps(reports, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

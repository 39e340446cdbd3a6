"""`alchemist sample`: a prompt plus reference images per entity word -> an mp4 and a PNG strip.

    alchemist sample --checkpoint C --prompt "a man walks a dog on the beach" \
        --ref man=man1.png --ref man=man2.png --ref dog=dog.png --background beach=beach.png \
        --frames 17 --size 512x288 --steps 128 --seed 0 --out video.mp4

Every reference (subjects, several images per word, the background) becomes one slot of the
personalization embedding, bound to its word's tokens in the prompt (paper 3.2).
"""
from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import torch

from model.encoders import find_word, word_token_positions
from model.personalization import Conditioning, word_index_tensor


class SampleError(ValueError):
    """A bad request: the message names the problem."""


# ---------------------------------------------------------------------------------------
# Arguments and validation
# ---------------------------------------------------------------------------------------


def parse_ref(value: str) -> tuple[str, str]:
    word, sep, image = value.partition("=")
    if not sep or not word.strip() or not image:
        raise SampleError(f"reference {value!r} is not WORD=IMAGE")
    return word.strip(), image


def parse_size(value: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise SampleError(f"size {value!r} is not WIDTHxHEIGHT, e.g. 512x288") from None
    return width, height


def check_image(word: str, image: str) -> None:
    from PIL import Image, UnidentifiedImageError

    if not Path(image).is_file():
        raise SampleError(f"reference image for {word!r} not found: {image}")
    try:
        with Image.open(image) as img:
            img.verify()
    except (UnidentifiedImageError, OSError) as err:
        raise SampleError(f"reference image for {word!r} is not a readable image: {image} ({err})") from None


def check_word_tokens(raw: dict, prompt: str, refs: list[tuple[str, str]]) -> None:
    """Every word must bind to prompt tokens within the text encoder's limit (tokenizer only)."""
    from model.encoders import TextEncoderConfig, WordTokenError, load_tokenizer, token_offsets, tokenize

    cfg = TextEncoderConfig(**raw["encoders"]["text"])
    offsets = token_offsets(tokenize(load_tokenizer(cfg), [prompt], cfg.max_length))[0]
    for word, _ in refs:
        try:
            word_token_positions(prompt, word, offsets)
        except WordTokenError as err:
            raise SampleError(str(err)) from None


def check_device(name: str) -> torch.device:
    try:
        device = torch.device(name)
    except RuntimeError:
        raise SampleError(f"--device {name!r} is not a torch device, e.g. cpu or cuda:0") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SampleError(f"--device {name}: CUDA is not available on this machine; use --device cpu")
    return device


def validate(args, raw: dict) -> tuple[list[tuple[str, str]], int, int]:
    """Check words, images, clip size and device against the bundle's config.json, before any
    weights are read (at paper scale loading takes minutes)."""
    from model.checkpoint import SavedGeometry

    refs = [parse_ref(r) for r in args.ref] + [parse_ref(r) for r in args.background]
    width, height = parse_size(args.size)
    for word, image in refs:
        if find_word(args.prompt, word) is None:
            raise SampleError(f"reference word {word!r} does not occur as a whole word in the prompt {args.prompt!r}")
        check_image(word, image)
    dit = raw["dit"]["config"]
    if len(refs) > dit["max_refs"]:
        raise SampleError(f"{len(refs)} reference images exceed this model's maximum of {dit['max_refs']}")
    _, ph, pw = dit["patch_size"]
    try:
        SavedGeometry(raw).check_clip(args.frames, height, width, multiple=max(ph, pw))
    except ValueError as err:
        raise SampleError(f"--frames {args.frames} / --size {args.size}: {err}") from None
    if args.steps < 1:
        raise SampleError(f"--steps must be at least 1, got {args.steps}")
    check_device(args.device)
    check_word_tokens(raw, args.prompt, refs)
    return refs, width, height


# ---------------------------------------------------------------------------------------
# Conditioning and sampling
# ---------------------------------------------------------------------------------------


def build_conditioning(bundle, prompt: str, refs: list[tuple[str, str]], device) -> Conditioning:
    from model.video_io import load_image

    text = bundle.text_encoder([prompt])  # (1, L, Dt)
    positions = [[word_token_positions(prompt, word, text.offsets[0]) for word, _ in refs]]
    k, image_dim = bundle.dit.cfg.word_tokens, bundle.dit.cfg.image_dim
    if refs:
        tokens = torch.stack([bundle.image_encoder(load_image(p)[None].to(device))[0] for _, p in refs])
        tokens = tokens.to(device)
        word_index = word_index_tensor(positions, k)
    else:
        tokens, word_index = torch.zeros(0, 1, image_dim), torch.zeros(1, 0, k, dtype=torch.long)
    return Conditioning(
        text=text.tokens,
        text_mask=text.mask,
        ref_tokens=tokens[None].to(device),  # (1, R, l, c)
        ref_mask=torch.ones(1, len(refs), dtype=torch.bool, device=device),
        word_index=word_index.to(device),
    )


def generate(bundle, cond: Conditioning, frames: int, height: int, width: int, steps: int, seed: int,
             device="cpu"):
    from model.rectified_flow import RectifiedFlow

    latent_shape = bundle.vae.latent_shape(frames, height, width)
    noise = torch.randn((1, *latent_shape), generator=torch.Generator().manual_seed(seed)).to(device)
    sampler = replace(bundle.sampler, steps=steps)
    latents = RectifiedFlow(bundle.flow).sample(bundle.dit, noise, cond, sampler)
    with torch.no_grad():
        return bundle.vae.decode(latents)[0], sampler  # (3, F, H, W)


def run_sample(args) -> int:
    from model.checkpoint import load_bundle, read_bundle_config
    from model.video_io import to_uint8_frames, write_mp4, write_strip

    try:
        refs, width, height = validate(args, read_bundle_config(args.checkpoint))
    except (SampleError, FileNotFoundError, ValueError) as err:
        print(f"alchemist sample: error: {err}", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    bundle = load_bundle(args.checkpoint, device=device)
    torch.manual_seed(args.seed)
    cond = build_conditioning(bundle, args.prompt, refs, device)
    video, sampler = generate(bundle, cond, args.frames, height, width, args.steps, args.seed, device)
    frames = to_uint8_frames(video)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "prompt": args.prompt, "refs": refs, "frames": args.frames, "size": [width, height],
        "seed": args.seed, "sampler": vars(sampler), "checkpoint": str(args.checkpoint),
        "model": bundle.raw["dit"]["config"], "flow": bundle.raw["flow"],
    }
    write_mp4(frames, out, metadata=meta)
    write_strip(frames, out.with_suffix(".png"))
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2))
    print(f"wrote {out} ({len(frames)} frames, {width}x{height}) and {out.with_suffix('.png')}")
    return 0

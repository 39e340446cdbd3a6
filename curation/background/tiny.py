"""A tiny random Stable Diffusion inpainting pipeline in the hub's own format (tests, benchmarks).

Same classes and file layout as `stabilityai/stable-diffusion-2-inpainting` (a UNet with 9
input channels: 4 noisy latents + 1 mask + 4 masked-image latents; AutoencoderKL; CLIP text
encoder and byte-level BPE tokenizer; PNDM scheduler) at toy widths with random weights, saved
with `save_pretrained` so it loads through the same `from_pretrained` path as the real one.
Its output is noise inside the mask: for tests only.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

SEED = 0  # our choice: tiny checkpoints are bit-identical across runs
# A few prompt words so the tokenizer has real merges (whole words) besides single bytes.
_CORPUS = ("clean and empty background any human or any object complex pattern and texture "
           "a man woman dog cat beach room street sky sea field kitchen forest").split()
_MERGES = 96  # enough to merge every corpus word into one token
_BOS, _EOS = "<|startoftext|>", "<|endoftext|>"


def _learn_merges(words: list[str], n: int) -> list[tuple[str, str]]:
    """Plain BPE (Sennrich et al.) on whole words ending in "</w>", as CLIP's tokenizer splits."""
    corpus = Counter(tuple(w[:-1]) + (w[-1] + "</w>",) for w in words)
    merges: list[tuple[str, str]] = []
    for _ in range(n):
        pairs: Counter = Counter()
        for symbols, freq in corpus.items():
            for pair in zip(symbols, symbols[1:]):
                pairs[pair] += freq
        if not pairs:
            break
        best = max(sorted(pairs), key=lambda p: pairs[p])  # sorted: deterministic ties
        merges.append(best)
        merged: Counter = Counter()
        for symbols, freq in corpus.items():
            out, i = [], 0
            while i < len(symbols):
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                    out.append(symbols[i] + symbols[i + 1])
                    i += 2
                else:
                    out.append(symbols[i])
                    i += 1
            merged[tuple(out)] += freq
        corpus = merged
    return merges


def tiny_clip_tokenizer_files(out_dir: Path) -> None:
    """vocab.json + merges.txt in CLIP's layout: bytes, bytes + "</w>", merges, specials."""
    from tokenizers import pre_tokenizers

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    merges = _learn_merges(_CORPUS, _MERGES)
    tokens = alphabet + [c + "</w>" for c in alphabet] + ["".join(m) for m in merges] + [_BOS, _EOS]
    vocab = {t: i for i, t in enumerate(dict.fromkeys(tokens))}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (out_dir / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))


def write_tiny_sd_inpaint(out_dir: str | Path) -> Path:
    """A tiny random `StableDiffusionInpaintPipeline` saved at `out_dir`; returns the path."""
    import torch
    from diffusers import (AutoencoderKL, PNDMScheduler, StableDiffusionInpaintPipeline,
                           UNet2DConditionModel)
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    out = Path(out_dir)
    tok_dir = out / "_tokenizer_src"
    tiny_clip_tokenizer_files(tok_dir)
    tokenizer = CLIPTokenizer(vocab=str(tok_dir / "vocab.json"), merges=str(tok_dir / "merges.txt"),
                              model_max_length=77)
    torch.manual_seed(SEED)
    width = 32  # text width = cross-attention width
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=width, intermediate_size=37, num_hidden_layers=2,
        num_attention_heads=4, projection_dim=width, max_position_embeddings=77,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id)).eval()
    unet = UNet2DConditionModel(
        sample_size=32, in_channels=9, out_channels=4, layers_per_block=1,
        block_out_channels=(32, 64), down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=width,
        attention_head_dim=8, use_linear_projection=True)  # SD 2 uses linear projections
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(32, 64),
        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
        sample_size=64)
    # SD 2's scheduler settings (scaled-linear betas, PLMS without Runge-Kutta warm-up)
    scheduler = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              skip_prk_steps=True, set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionInpaintPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(out)
    for f in tok_dir.iterdir():
        f.unlink()
    tok_dir.rmdir()
    return out

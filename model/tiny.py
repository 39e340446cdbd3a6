"""Tiny random checkpoints of the real encoder architectures, written offline.

No model hub is reachable in tests or CI, so tests (and `alchemist models tiny --out DIR`)
write small random checkpoints of the same transformers/diffusers classes the real code
loads, and then load them through the very same `from_pretrained` path.
"""
from __future__ import annotations

from pathlib import Path

import torch

TINY_WIDTH = 32  # hidden size of every tiny encoder, = DIT_CONFIGS["dit-tiny"] text/image dims
TINY_IMAGE_SIZE = {"clip": 28, "dinov2": 28, "mae": 32}  # 2x2 patches at /14 and /16

# A small caption corpus so the trained tokenizer splits words into several pieces, like T5's.
_CORPUS = [
    "a man and a woman walk a dog on the beach at sunset",
    "the woman in a red coat holds a small green-capped bottle",
    "a cat sleeps on a sofa in a sunny living room",
    "a boy rides a bicycle down a quiet street with a helmet",
    "two birds fly over the sea ice under the moon",
    "a chef cooks pasta in a kitchen while a girl watches",
]


def _write_tokenizer(out: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()  # SentencePiece-style, as T5's tokenizer
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=120, special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>"
    )
    tok.train_from_iterator(_CORPUS * 4, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", tok.token_to_id("</s>"))]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )
    fast.save_pretrained(out)


def _write_t5(out: Path) -> None:
    from transformers import T5Config, T5EncoderModel

    cfg = T5Config(
        vocab_size=128, d_model=TINY_WIDTH, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
        feed_forward_proj="gated-gelu", pad_token_id=0, eos_token_id=1, decoder_start_token_id=0,
    )
    T5EncoderModel(cfg).save_pretrained(out)
    _write_tokenizer(out)


def _vit_kwargs(image_size: int, patch_size: int) -> dict:
    return dict(
        image_size=image_size, patch_size=patch_size, hidden_size=TINY_WIDTH,
        num_hidden_layers=3, num_attention_heads=4, intermediate_size=64,
    )


def _write_vision(out: Path, kind: str) -> None:
    from transformers import (
        CLIPVisionConfig, CLIPVisionModel, Dinov2Config, Dinov2Model, ViTMAEConfig, ViTMAEModel,
    )

    size = TINY_IMAGE_SIZE[kind]
    if kind == "clip":
        CLIPVisionModel(CLIPVisionConfig(**_vit_kwargs(size, 14))).save_pretrained(out)
    elif kind == "dinov2":
        Dinov2Model(Dinov2Config(**_vit_kwargs(size, 14))).save_pretrained(out)
    else:
        ViTMAEModel(ViTMAEConfig(**_vit_kwargs(size, 16), mask_ratio=0.75)).save_pretrained(out)


def _write_wan_vae(out: Path) -> None:
    from diffusers import AutoencoderKLWan

    z = 4
    vae = AutoencoderKLWan(
        base_dim=8, z_dim=z, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
        temperal_downsample=[False, True, True], latents_mean=[0.0] * z, latents_std=[1.0] * z,
    )
    vae.save_pretrained(out)


def write_tiny_model_checkpoints(out_dir) -> dict[str, str]:
    """Write tiny random T5 (+ tokenizer), CLIP, DINOv2, MAE and Wan-VAE checkpoints.

    Returns {name: directory}; each directory loads with the class's `from_pretrained`.
    """
    out_dir = Path(out_dir)
    torch.manual_seed(0)  # same weights on every call
    paths = {name: out_dir / name for name in ("t5", "clip", "dinov2", "mae", "wan_vae")}
    _write_t5(paths["t5"])
    for kind in ("clip", "dinov2", "mae"):
        _write_vision(paths[kind], kind)
    _write_wan_vae(paths["wan_vae"])
    return {name: str(p) for name, p in paths.items()}

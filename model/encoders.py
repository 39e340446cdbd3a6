"""Frozen conditioning encoders (paper 3.2, B.1, Table 6) and the word-span -> token mapping.

Read top to bottom: loading, entity words in the prompt, the text encoder, the image encoder.
Images are float tensors (B, 3, H, W) in [0, 1]; text comes back as (B, L, D) hidden states
with a padding mask and each token's character span, which the personalization embedding
uses to pick out an entity word's tokens.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from model import model_registry

# ---------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------


def _load(cls, spec: str, **kwargs):
    """Load a pretrained model or tokenizer from a hub id, a local directory or `package:`,
    through the model registry (offline checks, revision pinning, one-line errors)."""
    return model_registry.load(cls, str(spec), **kwargs)


# ---------------------------------------------------------------------------------------
# Entity words -> token positions
# ---------------------------------------------------------------------------------------


def find_word(prompt: str, word: str) -> tuple[int, int] | None:
    """Character span of the first whole-word occurrence of `word` in `prompt`.

    Whole-word: "man" never matches inside "woman" or "manly". The exact spelling wins; a
    case-insensitive match is the fallback so "Man" at a sentence start still binds.
    """
    pattern = rf"(?<!\w){re.escape(word.strip())}(?!\w)"
    match = re.search(pattern, prompt) or re.search(pattern, prompt, flags=re.IGNORECASE)
    return match.span() if match else None


class WordTokenError(ValueError):
    """An entity word that cannot be bound to prompt tokens; `reason` is a rejection reason."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def word_token_positions(prompt: str, word: str, offsets) -> list[int]:
    """Indices of the tokens whose character span overlaps the word's first occurrence.

    A word cut off by the text encoder's token limit would otherwise bind to nothing.
    """
    span = find_word(prompt, word)
    if span is None:
        raise WordTokenError("word_not_in_prompt", f"entity word {word!r} does not occur as a whole word in {prompt!r}")
    start, end = span
    positions = [i for i, (s, e) in enumerate(offsets) if e > s and s < end and e > start]
    if not positions:
        raise WordTokenError(
            "word_beyond_token_limit",
            f"entity word {word!r} (characters {start}-{end}) lies beyond the text encoder's "
            f"{len(offsets)}-token limit; shorten the prompt or raise the encoder's max_length")
    return positions


# ---------------------------------------------------------------------------------------
# Text encoder
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextEncoderConfig:
    # ours: the paper names no text encoder; T5-v1.1-XXL (4096 wide) is the encoder of
    # Imagen, PixArt and SD3, and its encoder alone runs on one GPU.
    spec: str = "google/t5-v1_1-xxl"
    max_length: int = 256  # ours: long enough for the curated dense captions
    # Any transformers encoder with a fast tokenizer, e.g. "UMT5EncoderModel" (Wan's).
    model_class: str = "T5EncoderModel"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TextEmbedding:
    tokens: torch.Tensor  # (B, L, D)
    mask: torch.Tensor  # (B, L) bool, True for real tokens
    offsets: list[list[tuple[int, int]]]  # per prompt, per token: character span


class TextEncoder(nn.Module):
    """A frozen transformers encoder (T5-family by default) with its tokenizer."""

    def __init__(self, cfg: TextEncoderConfig = TextEncoderConfig()):
        super().__init__()
        import transformers

        self.cfg = cfg
        self.tokenizer = _load(transformers.AutoTokenizer, cfg.spec)
        model_cls = getattr(transformers, cfg.model_class)
        self.model = _load(model_cls, cfg.spec).eval().requires_grad_(False)
        config = self.model.config
        self.dim = getattr(config, "d_model", None) or config.hidden_size

    @torch.no_grad()
    def forward(self, prompts: list[str]) -> TextEmbedding:
        enc = tokenize(self.tokenizer, prompts, self.cfg.max_length)
        device = next(self.model.parameters()).device
        ids, mask = enc["input_ids"].to(device), enc["attention_mask"].to(device).bool()
        hidden = self.model(input_ids=ids, attention_mask=mask.long()).last_hidden_state
        hidden = hidden * mask[..., None]  # padded positions carry exact zeros
        return TextEmbedding(hidden, mask, token_offsets(enc))  # (B, L, D)


def load_tokenizer(cfg: TextEncoderConfig):
    """The text encoder's tokenizer alone: binding checks without loading the model."""
    import transformers

    return _load(transformers.AutoTokenizer, cfg.spec)


def tokenize(tokenizer, prompts: list[str], max_length: int):
    return tokenizer(prompts, padding="max_length", max_length=max_length, truncation=True,
                     return_offsets_mapping=True, return_tensors="pt")


def token_offsets(encoding) -> list[list[tuple[int, int]]]:
    """Per prompt, per token: its character span (padding and special tokens are empty)."""
    return [[tuple(map(int, o)) for o in row] for row in encoding["offset_mapping"].tolist()]


# ---------------------------------------------------------------------------------------
# Image encoder
# ---------------------------------------------------------------------------------------

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
CLIP_MEAN, CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)

# kind -> (transformers class name, default hub id, blocks back from the last, mean, std);
# paper Table 6: CLIP's block 23 of 24 (B.1: second-to-last), DINOv2's and MAE's last.
IMAGE_ENCODERS = {
    "dinov2": ("Dinov2Model", "facebook/dinov2-large", 0, IMAGENET_MEAN, IMAGENET_STD),
    "clip": ("CLIPVisionModel", "openai/clip-vit-large-patch14", 1, CLIP_MEAN, CLIP_STD),
    "mae": ("ViTMAEModel", "facebook/vit-mae-large", 0, IMAGENET_MEAN, IMAGENET_STD),
}


@dataclass(frozen=True)
class ImageEncoderConfig:
    kind: str = "dinov2"  # paper Tables 1-2: DINOv2 gives the best subject fidelity
    spec: str | None = None  # None = the kind's default hub id above
    block: int | None = None  # 1-based block whose output is used; None = paper Table 6
    tokens: str = "patch"  # paper B.1 "patch"; "class" or "all" for the class-token ablation
    image_size: int = 224  # paper Table 6: 224 px gives 256 tokens at /14, 196 at /16

    def to_dict(self) -> dict:
        return asdict(self)


class ImageEncoder(nn.Module):
    """A frozen ViT returning the tokens of one block: (B, 3, H, W) -> (B, l, c)."""

    def __init__(self, cfg: ImageEncoderConfig = ImageEncoderConfig()):
        super().__init__()
        import transformers

        if cfg.kind not in IMAGE_ENCODERS:
            raise ValueError(f"unknown image encoder {cfg.kind!r}; known: {sorted(IMAGE_ENCODERS)}")
        if cfg.tokens not in ("patch", "class", "all"):
            raise ValueError(f"tokens must be 'patch', 'class' or 'all', got {cfg.tokens!r}")
        cls_name, default_spec, back, mean, std = IMAGE_ENCODERS[cfg.kind]
        self.cfg = cfg
        self.model = _load(getattr(transformers, cls_name), cfg.spec or default_spec)
        self.model.eval().requires_grad_(False)
        layers = self.model.config.num_hidden_layers
        self.block = cfg.block if cfg.block is not None else layers - back
        if not 1 <= self.block <= layers:
            raise ValueError(f"block {self.block} outside 1..{layers}")
        self.num_layers, self.dim = layers, self.model.config.hidden_size
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def preprocess(self, images):  # (B, 3, H, W) in [0, 1]
        """Pad to a square with black (curated references are masked on black), then resize."""
        h, w = images.shape[-2:]
        side = max(h, w)
        top, left = (side - h) // 2, (side - w) // 2
        images = F.pad(images, (left, side - w - left, top, side - h - top), value=0.0)
        size = (self.cfg.image_size, self.cfg.image_size)
        images = F.interpolate(images, size=size, mode="bicubic", antialias=True, align_corners=False)
        return (images.clamp(0, 1) - self.mean) / self.std  # (B, 3, S, S)

    def _run(self, pixels):
        kwargs = {"output_hidden_states": True}
        if self.cfg.kind == "mae":
            # MAE masks and shuffles by default: keep every patch, in raster order.
            self.model.config.mask_ratio = 0.0
            b, n = pixels.shape[0], self.model.embeddings.patch_embeddings.num_patches
            kwargs["noise"] = torch.arange(n, device=pixels.device).expand(b, n).float()
        return self.model(pixel_values=pixels, **kwargs)

    @torch.no_grad()
    def forward(self, images):  # (B, 3, H, W) in [0, 1]
        return self.features(images)

    def features(self, images):
        """The selected tokens, differentiable w.r.t. the images (for a perceptual loss)."""
        out = self._run(self.preprocess(images))
        # The last block's tokens are taken after the model's final norm (DINOv2's
        # x_norm_patchtokens); an inner block's are its raw output (CLIP's penultimate, LLaVA).
        if self.block == self.num_layers:
            hidden = out.last_hidden_state
        else:
            hidden = out.hidden_states[self.block]
        if self.cfg.tokens == "patch":
            return hidden[:, 1:]  # (B, l, c)
        if self.cfg.tokens == "class":
            return hidden[:, :1]  # (B, 1, c)
        return hidden  # (B, 1 + l, c)

"""Clip records -> training samples -> one uniform batch of latents and `Conditioning`.

A sample is built from its record and its keyed generator: the clip span decoded at 24 fps
from the span's start, resized and center-cropped to the bucket; the A.3 reference slots,
each augmented (Table 4) and composited on black; each slot's word token positions in the
caption. A record that cannot become a sample is a counted skip with its reason.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from model.encoders import WordTokenError, token_offsets, tokenize, word_token_positions
from model.personalization import Conditioning, word_index_tensor
from model.video_io import load_image, resize_center_crop, to_tensor
from training.augment import augment
from training.buckets import Bucket
from training.conditioning import draw_conditions
from training.reader import ClipRecord, OpenSources, SourceMissing, decode_span


class Skip(Exception):
    def __init__(self, reason: str, message: str = ""):
        super().__init__(message or reason)
        self.reason = reason


@dataclass
class Sample:
    key: str
    index: int  # global sample index: keys every random draw of this sample
    caption: str
    video: torch.Tensor | None  # (3, F, H, W) in [-1, 1], when encoded on the fly
    latent: torch.Tensor | None = None  # (C, f, h, w), when read from the latent cache
    refs: list[torch.Tensor] = field(default_factory=list)  # each (3, h, w) in [0, 1], on black
    positions: list[list[int]] = field(default_factory=list)  # per slot: word token positions


def clip_video(record: ClipRecord, bucket: Bucket, sources: OpenSources | None = None) -> torch.Tensor:
    """The bucket's first F frames of the span at 24 fps, resized to cover and center-cropped.
    Decoding gets the process's torch thread budget, like the step it feeds (on a busy machine a
    short span waits longer for decoder threads beyond that budget than it gains from them)."""
    try:
        frames = decode_span(record.source, record.start_s, record.end_s, max_frames=bucket.frames,
                             threads=torch.get_num_threads(), sources=sources)
    except SourceMissing as err:
        raise Skip("source_missing", str(err)) from None
    except (OSError, ValueError) as err:
        raise Skip("decode_failed", str(err)) from None
    if len(frames) < bucket.frames:
        raise Skip("clip_too_short", f"{len(frames)} frames at 24 fps < {bucket.frames}")
    return resize_center_crop(to_tensor(frames), bucket.height, bucket.width)  # (3, F, H, W)


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_RGB, PNG_RGBA = 2, 6  # IHDR colour types: what curation writes (references RGBA, the rest RGB)


def rgba(png: bytes) -> torch.Tensor:
    """Any image as (4, H, W) in [0, 1]: RGB images get an opaque alpha."""
    return rgba_uint8(png).float() / 255.0


def rgba_uint8(png: bytes) -> torch.Tensor:
    """Any image as (4, H, W) uint8: RGB images get an opaque alpha. 8-bit RGB and RGBA
    PNGs (IHDR: bit depth at byte 24, colour type at 25) go through OpenCV's decoder, which
    gives PIL's pixels at a fraction of PIL's per-image cost (a test checks every mode)."""
    import numpy as np

    if png[:8] == PNG_SIGNATURE and len(png) > 25 and png[24] == 8 and png[25] in (PNG_RGB, PNG_RGBA):
        import cv2

        bgr = cv2.imdecode(np.frombuffer(png, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
        array = cv2.cvtColor(bgr, cv2.COLOR_BGRA2RGBA if png[25] == PNG_RGBA else cv2.COLOR_BGR2RGBA)
    else:
        import io

        from PIL import Image

        with Image.open(io.BytesIO(png)) as img:
            array = np.asarray(img.convert("RGBA")).copy()
    return torch.from_numpy(array).permute(2, 0, 1)


def word_positions(tokenizer, max_length: int, caption: str, words: list[str | None],
                   offsets: list | None = None) -> list[list[int]]:
    """Each slot word's token positions in the caption (`offsets`: the caption's token spans,
    when already tokenized)."""
    if offsets is None:
        offsets = token_offsets(tokenize(tokenizer, [caption], max_length))[0]
    try:
        return [[] if w is None else word_token_positions(caption, w, offsets) for w in words]
    except WordTokenError as err:
        raise Skip(err.reason, str(err)) from None


@dataclass
class SampleBuilder:
    tokenizer: object
    max_length: int
    conditioning: object  # ConditioningConfig, or None for text-only stages
    augment: object  # AugmentConfig, or None (augment: off)
    offsets: dict = field(default_factory=dict)  # caption -> token spans, of the current shard
    sources: OpenSources = field(default_factory=OpenSources)  # the current shard's open videos

    def prepare_shard(self, records: list[ClipRecord]) -> None:
        """Every caption of a newly joined shard tokenized in one call (the tokenizer's fixed
        cost per call is most of a short caption's cost); the previous shard's captions are
        dropped and its source videos closed."""
        self.sources.close_all()
        captions = sorted({r.caption for r in records})
        spans = token_offsets(tokenize(self.tokenizer, captions, self.max_length)) if captions else []
        self.offsets = dict(zip(captions, spans))

    def build(self, record: ClipRecord, bucket: Bucket, index: int, rng, materialize: bool = True,
              cache=None) -> Sample:
        """The sample's draws and word positions always (cheap, so every worker agrees on the
        global batch); its frames and augmented references only when `materialize`."""
        if "://" not in record.source and not Path(record.source).exists():
            raise Skip("source_missing", f"source video {record.source} is gone")
        slots = draw_conditions(record, self.conditioning, rng) if self.conditioning else []
        positions = word_positions(self.tokenizer, self.max_length, record.caption, [s.word for s in slots],
                                   self.offsets.get(record.caption))
        sample = Sample(record.clip_key, index, record.caption, None, positions=positions)
        if not materialize:
            return sample
        if cache is not None:
            sample.latent = cache.latent(record, bucket)
        else:
            sample.video = clip_video(record, bucket, self.sources)
        # A.3 draws images with replacement: each distinct PNG is decoded once per sample
        # (augmentations never write into their input, so slots may share one tensor).
        decoded = {png: rgba_uint8(png) for png in {s.image for s in slots}}  # converted per batch
        sample.refs = augment([decoded[s.image] for s in slots], self.augment, rng)
        return sample


# ---------------------------------------------------------------------------------------
# Batches
# ---------------------------------------------------------------------------------------


def encode_images(image_encoder, refs: list[torch.Tensor], device) -> torch.Tensor:  # -> (R, l, c)
    return torch.cat([image_encoder(r[None].to(device)) for r in refs], dim=0)


def conditioning(samples: list[Sample], text, image_encoder, cfg, device) -> Conditioning:
    """Text tokens (already encoded) plus each sample's reference slots, padded to the batch's max."""
    b, refs = len(samples), max((len(s.refs) for s in samples), default=0)
    tokens = getattr(image_encoder, "tokens_per_image", None) or 1
    ref_tokens, ref_mask = None, torch.zeros(b, refs, dtype=torch.bool)
    for i, s in enumerate(samples):
        if not s.refs:
            continue
        enc = encode_images(image_encoder, s.refs, device)  # (R_i, l, c)
        if ref_tokens is None:
            ref_tokens = torch.zeros(b, refs, enc.shape[1], enc.shape[2], device=device)
        ref_tokens[i, : len(s.refs)] = enc
        ref_mask[i, : len(s.refs)] = True
    if ref_tokens is None:
        ref_tokens = torch.zeros(b, refs, tokens, cfg.image_dim, device=device)
    word_index = word_index_tensor([s.positions for s in samples], cfg.word_tokens)
    if word_index.shape[1] < refs:
        word_index = torch.full((b, refs, cfg.word_tokens), -1, dtype=torch.long)
    return Conditioning(text=text.tokens.to(device), text_mask=text.mask.to(device), ref_tokens=ref_tokens,
                        ref_mask=ref_mask.to(device), word_index=word_index.to(device))

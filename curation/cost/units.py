"""One unit of model work each (a frame through a detector, a window through TransNetV2, a
denoising step), counted on the real architecture at its real size.

A unit is named by a key, `model.work:param=value,...`; `measure_unit(key)` counts it. Keys
are measured once by `alchemist cost --measure` into measured.json, or on demand."""
from __future__ import annotations

from typing import Callable

import torch

from curation.cost import architectures as arch
from curation.cost.counting import GPU_FLOAT_BYTES, Count, measure

# Published figures for models with no PyTorch definition in our dependencies (ONNX only).
# YOLOv9-C at 640x640: 102.1 GFLOPs, 25.3M parameters (Wang et al. 2024, YOLOv9, Table 1).
PUBLISHED = {"yolov9c-face.image:size=640": (Count(102.1e9, 25.3e6 * 2), 25_300_000)}

TRANSNET_WINDOW = 100  # frames per TransNetV2 forward (its published inference window)
SAM_SIZE = 1024  # SAM's input resolution (longest side padded to 1024)
SD_LATENT = 64  # 512 px / 8: SD 2 inpainting at the authors' 512x512


def parse_key(key: str) -> tuple[str, dict[str, int]]:
    name, _, params = key.partition(":")
    return name, {k: int(v) for k, v in (p.split("=") for p in params.split(",") if p)}


def _long(*shape: int) -> torch.Tensor:
    return torch.zeros(*shape, dtype=torch.long)


def _transnet(p):
    window = torch.zeros(1, TRANSNET_WINDOW, 27, 48, 3, dtype=torch.uint8)
    return measure(arch.transnetv2, lambda m: m(window), device="cpu")


def _videomae(p):
    frames = p["frames"]
    return measure(lambda: arch.videomae_base(frames),
                   lambda m: m(pixel_values=torch.zeros(1, frames, 3, 224, 224)))


def _filled_cache(batch: int, tokens: int):
    """A KV cache of `tokens` tokens per sequence, filled outside the count."""
    def prepare(m):
        return m(input_ids=_long(batch, tokens), use_cache=True).past_key_values if tokens else None
    return prepare


def _llm_prefill(p):
    """`new` prompt tokens attending to themselves and to `cached` tokens already in the KV
    cache (vLLM's prefix cache holds the shared few-shot part)."""
    return measure(arch.mistral_7b, prepare=_filled_cache(1, p["cached"]),
                   run=lambda m, past: m(input_ids=_long(1, p["new"]), past_key_values=past))


def _llm_decode(p):
    """One decode step of `batch` sequences, each attending to a KV cache of `context` tokens.

    FLOPs are counted; bytes are the weights plus the KV cache read once per step, computed
    from the built model, because an unfused count (cache concatenation, grouped-query heads
    repeated in memory) describes Hugging Face's eager code, not vLLM's paged-attention kernels."""
    batch, context = p["batch"], p["context"]
    count, params = measure(arch.mistral_7b, prepare=_filled_cache(batch, context),
                            run=lambda m, past: m(input_ids=_long(batch, 1), past_key_values=past))
    return Count(count.flops, params * GPU_FLOAT_BYTES + batch * context * _kv_bytes_per_token()), params


def _kv_bytes_per_token() -> int:
    """Keys and values of one token in every layer (bf16)."""
    c = arch.MISTRAL_7B
    head_dim = c["hidden_size"] // c["num_attention_heads"]
    return 2 * c["num_hidden_layers"] * c["num_key_value_heads"] * head_dim * GPU_FLOAT_BYTES


def _gdino(p):
    h, w, text = p["h"], p["w"], p["text"]
    return measure(arch.grounding_dino_tiny, lambda m: m(
        pixel_values=torch.zeros(1, 3, h, w), input_ids=_long(1, text),
        attention_mask=torch.ones(1, text, dtype=torch.long)), device="cpu")


def _sam_image(model_id):
    def unit(p):
        return measure(lambda: arch.sam(model_id),
                       lambda m: m.get_image_embeddings(torch.zeros(1, 3, SAM_SIZE, SAM_SIZE)))
    return unit


def _sam_prompt(p):
    """SAM's prompt encoder + mask decoder for one box (the image embedding is reused)."""
    return measure(lambda: arch.sam("facebook/sam-vit-base"), lambda m: m(
        image_embeddings=torch.zeros(1, 256, SAM_SIZE // 16, SAM_SIZE // 16),
        input_boxes=torch.zeros(1, 1, 4), multimask_output=False))


def _sd_unet(p):
    b = p["batch"]
    return measure(arch.sd2_inpaint_unet, lambda m: m(
        torch.zeros(b, 9, SD_LATENT, SD_LATENT), torch.full((b,), 500),
        encoder_hidden_states=torch.zeros(b, 77, 1024)))


def _sd_vae_encode(p):
    return measure(arch.sd2_vae, lambda m: m.encode(torch.zeros(1, 3, 8 * SD_LATENT, 8 * SD_LATENT)))


def _sd_vae_decode(p):
    return measure(arch.sd2_vae, lambda m: m.decode(torch.zeros(1, 4, SD_LATENT, SD_LATENT)))


def _sd_text(p):
    return measure(arch.sd2_text_encoder, lambda m: m(input_ids=_long(1, 77)))


def _lama(p):
    from curation.background.lama import FFCResNetGenerator

    size = p["size"]
    return measure(FFCResNetGenerator, lambda m: m(torch.zeros(1, 3, size, size), torch.zeros(1, 1, size, size)))


UNITS: dict[str, Callable[[dict], tuple[Count, int]]] = {
    "transnetv2.window": _transnet,
    "videomae-base.clip": _videomae,
    "mistral-7b.prefill": _llm_prefill,
    "mistral-7b.decode": _llm_decode,
    "grounding-dino-tiny.frame": _gdino,
    **{f"{mid.split('/')[1]}.image": _sam_image(mid) for mid in arch.SAM_VISION},
    "sam.box": _sam_prompt,
    "sd2-inpaint.unet": _sd_unet,
    "sd2-inpaint.vae-encode": _sd_vae_encode,
    "sd2-inpaint.vae-decode": _sd_vae_decode,
    "sd2-inpaint.text": _sd_text,
    "big-lama.image": _lama,
}


def measure_unit(key: str) -> tuple[Count, int, str]:
    """(count, parameters, how) for one unit key."""
    if key in PUBLISHED:
        count, params = PUBLISHED[key]
        return count, params, "published"
    name, params = parse_key(key)
    if name not in UNITS:
        raise KeyError(f"unknown cost unit {name!r}; known: {sorted(UNITS)}")
    count, n_params = UNITS[name](params)
    how = "cpu" if name in ("transnetv2.window", "grounding-dino-tiny.frame") else "meta"
    return count, n_params, how

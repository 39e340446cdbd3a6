"""Tiny random checkpoints of the evaluator's models, in the hub's own format (tests, `make bench`).

CLIP (`CLIPModel` + a byte-level BPE tokenizer + image processor), DINO (`ViTModel`), RAFT
(torchvision `raft_small` state dict), plus the GroundingDINO and SAM builders of
`curation.localize.tiny`. They load through the same `from_pretrained` code as the real
weights; their scores are meaningless.
"""
from __future__ import annotations

from pathlib import Path

SEED = 0  # bit-identical tiny checkpoints on every call
TINY_IMAGE = 32  # CLIP and DINO input side
TINY_WIDTH = 32


def _byte_vocab() -> dict[str, int]:
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    chars = list(bytes_to_unicode().values())
    tokens = chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(tokens)}


def write_tiny_clip(out_dir: str | Path) -> Path:
    import torch
    from transformers import (CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor,
                              CLIPTextConfig, CLIPTokenizer, CLIPVisionConfig)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vocab = _byte_vocab()  # single bytes only, no merges: every word splits into letters
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[])
    text = CLIPTextConfig(vocab_size=len(vocab), hidden_size=TINY_WIDTH, intermediate_size=64,
                          num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=77,
                          bos_token_id=vocab["<|startoftext|>"], eos_token_id=vocab["<|endoftext|>"],
                          pad_token_id=vocab["<|endoftext|>"])
    vision = CLIPVisionConfig(hidden_size=TINY_WIDTH, intermediate_size=64, num_hidden_layers=2,
                              num_attention_heads=2, image_size=TINY_IMAGE, patch_size=8)
    config = CLIPConfig(text_config=text.to_dict(), vision_config=vision.to_dict(), projection_dim=16)
    torch.manual_seed(SEED)
    CLIPModel(config).eval().save_pretrained(out)
    images = CLIPImageProcessor(size={"shortest_edge": TINY_IMAGE},
                                crop_size={"height": TINY_IMAGE, "width": TINY_IMAGE})
    CLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(out)
    return out


def write_tiny_dino(out_dir: str | Path) -> Path:
    import torch
    from transformers import ViTConfig, ViTModel

    out = Path(out_dir)
    torch.manual_seed(SEED)
    config = ViTConfig(image_size=TINY_IMAGE, patch_size=16, hidden_size=TINY_WIDTH, num_hidden_layers=2,
                       num_attention_heads=2, intermediate_size=64)
    ViTModel(config, add_pooling_layer=False).eval().save_pretrained(out)
    return out


def write_tiny_raft(out_dir: str | Path) -> Path:
    """A random torchvision `raft_small` state dict (load with arch "small")."""
    import torch
    from torchvision.models.optical_flow import raft_small

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(SEED)
    path = out / "raft_small.pth"
    torch.save(raft_small(weights=None).state_dict(), path)
    return path


def write_tiny_eval_models(out_dir: str | Path) -> dict[str, str]:
    """Every model the evaluator loads, tiny: {name: path}."""
    from curation.localize.tiny import write_tiny_grounding_dino, write_tiny_sam

    out = Path(out_dir)
    return {"clip": str(write_tiny_clip(out / "clip")), "dino": str(write_tiny_dino(out / "dino")),
            "grounding_dino": str(write_tiny_grounding_dino(out / "grounding_dino")),
            "sam": str(write_tiny_sam(out / "sam")), "raft": str(write_tiny_raft(out / "raft"))}

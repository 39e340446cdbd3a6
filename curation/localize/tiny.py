"""Tiny random GroundingDINO and SAM checkpoints in the hub's own format (tests and benchmarks).

They have the real architectures (Swin + BERT + deformable DETR decoder; SAM ViT + prompt
encoder + mask decoder) at toy widths, random weights, and processors set to small input
sizes, so they load through exactly the `from_pretrained` path the real checkpoints use.
Their boxes and masks are meaningless: they are for tests only, never for a demo's outputs
(the offline profile uses `curation.localize.offline` instead).
"""
from __future__ import annotations

import string
from pathlib import Path

# Words the tiny BERT vocabulary knows whole; anything else falls back to single letters
# ("##x" pieces), so every lowercase prompt tokenizes without [UNK].
_WORDS = ("a", "an", "the", "man", "woman", "person", "boy", "girl", "dog", "cat", "ball",
          "car", "phone", "hat", "shirt", "jacket", "bottle", "hair", "red", "brown", "long",
          "green", "capped", "horse", "bird", "bike", "guitar", "table", "cup")
_SPECIAL = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
SEED = 0  # our choice: tiny checkpoints are bit-identical across runs


def tiny_vocab() -> list[str]:
    letters = list(string.ascii_lowercase)
    pieces = [f"##{c}" for c in letters + list(string.digits)]
    return [*_SPECIAL, *string.punctuation, *string.digits, *letters, *pieces,
            *[w for w in _WORDS if w not in letters]]


def write_tiny_grounding_dino(out_dir: str | Path) -> Path:
    """A tiny random `GroundingDinoForObjectDetection` + `GroundingDinoProcessor` at `out_dir`."""
    import torch
    from transformers import (BertConfig, BertTokenizer, GroundingDinoConfig,
                              GroundingDinoForObjectDetection, GroundingDinoImageProcessor,
                              GroundingDinoProcessor, SwinConfig)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vocab = {token: i for i, token in enumerate(tiny_vocab())}
    tokenizer = BertTokenizer(vocab=vocab, do_lower_case=True)
    backbone = SwinConfig(image_size=64, patch_size=4, embed_dim=8, depths=[1, 1, 1, 1],
                          num_heads=[1, 1, 2, 2], window_size=2, out_indices=[2, 3, 4])
    text = BertConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1,
                      num_attention_heads=2, intermediate_size=32, max_position_embeddings=64)
    config = GroundingDinoConfig(
        backbone_config=backbone, text_config=text, d_model=32, num_queries=12,
        encoder_layers=1, decoder_layers=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_n_points=2,
        decoder_n_points=2, max_text_len=64, num_feature_levels=4)
    torch.manual_seed(SEED)
    model = GroundingDinoForObjectDetection(config).eval()
    model.save_pretrained(out)
    images = GroundingDinoImageProcessor(size={"shortest_edge": 64, "longest_edge": 96})
    GroundingDinoProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(out)
    return out


def write_tiny_sam(out_dir: str | Path) -> Path:
    """A tiny random `SamModel` + `SamProcessor` (64 px input) at `out_dir`."""
    import torch
    from transformers import (SamConfig, SamImageProcessor, SamMaskDecoderConfig, SamModel,
                              SamProcessor, SamPromptEncoderConfig, SamVisionConfig)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    size, patch, width = 64, 8, 16
    vision = SamVisionConfig(hidden_size=width, output_channels=width, num_hidden_layers=2,
                             num_attention_heads=2, image_size=size, patch_size=patch,
                             window_size=4, global_attn_indexes=[1], mlp_dim=32, num_pos_feats=width // 2)
    prompt = SamPromptEncoderConfig(hidden_size=width, image_size=size, patch_size=patch,
                                    mask_input_channels=4)
    decoder = SamMaskDecoderConfig(hidden_size=width, mlp_dim=32, num_hidden_layers=2,
                                   num_attention_heads=2, iou_head_hidden_dim=16)
    config = SamConfig(vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=decoder)
    torch.manual_seed(SEED)
    model = SamModel(config).eval()
    model.save_pretrained(out)
    images = SamImageProcessor(size={"longest_edge": size}, pad_size={"height": size, "width": size},
                               mask_size={"longest_edge": size // 4},
                               mask_pad_size={"height": size // 4, "width": size // 4})
    SamProcessor(image_processor=images).save_pretrained(out)
    return out

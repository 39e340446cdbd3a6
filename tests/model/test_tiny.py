"""Tiny checkpoints load through the real classes, deterministically."""
import torch
from safetensors.torch import load_file

from model.tiny import write_tiny_model_checkpoints


def test_tiny_checkpoints_are_the_real_architectures(tiny_checkpoints):
    from diffusers import AutoencoderKLWan
    from transformers import AutoConfig, AutoTokenizer

    assert set(tiny_checkpoints) == {"t5", "clip", "dinov2", "mae", "wan_vae"}
    kinds = {name: AutoConfig.from_pretrained(tiny_checkpoints[name]).model_type
             for name in ("t5", "clip", "dinov2", "mae")}
    assert kinds == {"t5": "t5", "clip": "clip_vision_model", "dinov2": "dinov2", "mae": "vit_mae"}
    tok = AutoTokenizer.from_pretrained(tiny_checkpoints["t5"])
    assert len(tok("a woman")["input_ids"]) > 3  # subword pieces plus the end token, like T5
    assert AutoencoderKLWan.from_pretrained(tiny_checkpoints["wan_vae"]).config.z_dim == 4


def test_tiny_checkpoints_are_deterministic(tiny_checkpoints, tmp_path):
    again = write_tiny_model_checkpoints(tmp_path)
    a = load_file(f"{tiny_checkpoints['dinov2']}/model.safetensors")
    b = load_file(f"{again['dinov2']}/model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

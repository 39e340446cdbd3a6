"""Shared helpers for the model tests: tiny checkpoints, tiny configs, random conditioning."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import pytest
import torch

from model.model_registry import torch_threads
from model.config import DIT_CONFIGS
from model.personalization import Conditioning

TINY = DIT_CONFIGS["dit-tiny"]


def _make_cond(batch=2, refs=2, tokens=4, text_len=6, cfg=TINY, seed=0) -> Conditioning:
    """Random conditioning with every text token, slot and word position valid."""
    g = torch.Generator().manual_seed(seed)
    word_index = torch.randint(0, text_len, (batch, refs, cfg.word_tokens), generator=g)
    return Conditioning(
        text=torch.randn(batch, text_len, cfg.text_dim, generator=g),
        text_mask=torch.ones(batch, text_len, dtype=torch.bool),
        ref_tokens=torch.randn(batch, refs, tokens, cfg.image_dim, generator=g),
        ref_mask=torch.ones(batch, refs, dtype=torch.bool),
        word_index=word_index,
    )


def _randomize(module: torch.nn.Module, seed=0, std=0.1) -> torch.nn.Module:
    """Replace zero-initialised (adaLN-Zero) weights so every path changes the output."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * std)
    return module


@pytest.fixture(autouse=True)
def one_torch_thread():
    """One intra-op thread for tiny models (see model.model_registry.torch_threads); restored
    afterwards so other test folders keep their own setting."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory):
    from model.tiny import write_tiny_model_checkpoints

    return write_tiny_model_checkpoints(tmp_path_factory.mktemp("tiny_models"))


@pytest.fixture(scope="session")
def make_cond():
    """make_cond(batch, refs, tokens, text_len, cfg, seed) -> random Conditioning."""
    return _make_cond


@pytest.fixture(scope="session")
def randomize():
    """randomize(module, seed) -> the module with every weight redrawn (no zero init)."""
    return _randomize

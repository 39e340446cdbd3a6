"""A small committed sprite dataset and tiny training configs shared by the training tests."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest

from model.model_registry import torch_threads
from training.synthetic import SpriteClip, write_sprite_dataset

PALETTE = ((220, 40, 40), (40, 200, 60), (40, 80, 220), (230, 210, 40))


@pytest.fixture(autouse=True)
def one_torch_thread():
    with torch_threads(1):
        yield


@pytest.fixture(scope="session")
def sprite_dataset(tmp_path_factory):
    clips = [SpriteClip(word, colour, direction) for word in ("square", "bar")
             for colour, direction in zip(PALETTE, (1, -1, 1, -1))]
    return write_sprite_dataset(tmp_path_factory.mktemp("sprites") / "dataset", clips, shard_size=3)


@pytest.fixture(scope="session")
def tiny_encoders(tmp_path_factory):
    """Tiny encoder checkpoints for runs that are compared with each other: the tiny
    tokenizer's training is not deterministic, so two runs that each wrote their own would
    tokenize the captions differently and could never agree."""
    from training.setup import tiny_encoders as write

    return write(tmp_path_factory.mktemp("encoders"))


def with_encoders(cfg, encoders):
    from dataclasses import replace

    return replace(cfg, text_encoder=encoders["t5"], image_encoder_spec=encoders["dinov2"])

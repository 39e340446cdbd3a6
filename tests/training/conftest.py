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

"""Per-shard and batched work of the data loader gives what per-sample work gave: reference
decoding, caption tokenization once per shard, source videos kept open within a shard."""
import io
import itertools

import numpy as np
import pytest
import torch
from PIL import Image

from training.reader import CuratedReader


def encoded(img: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def image_modes() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (13, 7, 3), dtype=np.uint8))
    palette = rgb.convert("P")
    transparent = rgb.convert("P")
    transparent.info["transparency"] = 3
    return {"RGBA": encoded(Image.fromarray(rng.integers(0, 256, (13, 7, 4), dtype=np.uint8))),
            "RGB": encoded(rgb), "L": encoded(rgb.convert("L")), "LA": encoded(rgb.convert("LA")),
            "P": encoded(palette), "P+tRNS": encoded(transparent), "JPEG": encoded(rgb, "JPEG"),
            "16-bit": encoded(Image.fromarray(rng.integers(0, 65535, (13, 7), dtype=np.uint16)))}


@pytest.mark.parametrize("mode", list(image_modes()))
def test_reference_decoding_equals_pils_rgba(mode):
    from training.samples import rgba

    data = image_modes()[mode]
    with Image.open(io.BytesIO(data)) as img:
        expected = torch.from_numpy(np.asarray(img.convert("RGBA")).copy()).permute(2, 0, 1).float() / 255
    assert torch.equal(rgba(data), expected)


def test_captions_are_tokenized_once_per_shard_with_the_same_positions(sprite_dataset, tmp_path):
    from model.encoders import TextEncoderConfig, load_tokenizer
    from model.tiny import write_tiny_model_checkpoints
    from training.buckets import buckets
    from training.conditioning import sample_rng
    from training.config import ConditioningConfig
    from training.samples import SampleBuilder

    tokenizer = load_tokenizer(TextEncoderConfig(spec=write_tiny_model_checkpoints(tmp_path)["t5"]))
    calls = []
    counting = lambda *args, **kwargs: calls.append(len(args[0])) or tokenizer(*args, **kwargs)
    per_shard = SampleBuilder(counting, 32, ConditioningConfig(), None)
    per_sample = SampleBuilder(tokenizer, 32, ConditioningConfig(), None)
    reader = CuratedReader([sprite_dataset], seed=5, on_join=per_shard.prepare_shard)
    bucket = buckets("cpu-tiny")[0]
    for i, (record, _) in enumerate(itertools.islice(reader.records(), 16)):  # two epochs
        a = per_shard.build(record, bucket, i, sample_rng(0, 0, i), materialize=False)
        b = per_sample.build(record, bucket, i, sample_rng(0, 0, i), materialize=False)
        assert a.positions == b.positions and a.positions
    assert len(calls) == 2 * len(reader.shards)  # one call per joined shard, all its captions at once

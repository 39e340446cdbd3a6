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


def counting_video(path, frames: int = 48, fps: float = 24.0, gop: int = 8):
    from curation.synthetic import write_video

    video = np.zeros((frames, 16, 16, 3), dtype=np.uint8)
    video[..., 0] = (np.arange(frames) * 5 % 256)[:, None, None]  # the frame index in the red channel
    return str(write_video(video, path, fps=fps, crf=0, gop=gop))


def test_a_reused_source_gives_a_fresh_opens_frames_for_spans_out_of_order(tmp_path):
    from training.reader import OpenSources, decode_span

    a, b = counting_video(tmp_path / "a.mp4"), counting_video(tmp_path / "b.mp4", fps=12.0, gop=5)
    spans = [(a, 1.0, 1.5), (a, 0.0, 0.4), (b, 2.0, 3.0), (a, 1.75, 2.0), (b, 0.0, 1.0), (a, 1.0, 1.5), (b, 3.5, 4.0)]
    sources = OpenSources()
    for source, start, end in spans:
        fresh = decode_span(source, start, end, threads=1)
        reused = decode_span(source, start, end, threads=1, sources=sources)
        assert np.array_equal(fresh, reused)
        assert np.array_equal(decode_span(source, start, end, max_frames=3, threads=1, sources=sources), fresh[:3])
    assert len(sources) == 2  # each source opened once
    sources.close_all()
    assert len(sources) == 0


def test_open_sources_are_bounded_least_recently_used_first(tmp_path):
    from training.reader import OpenSources, decode_span

    paths = [counting_video(tmp_path / f"{i}.mp4", frames=12) for i in range(3)]
    sources = OpenSources(size=2)
    for path in paths[:2]:
        decode_span(path, 0.0, 0.2, threads=1, sources=sources)
    first = sources.get(paths[0], 1)  # used last: kept
    decode_span(paths[2], 0.0, 0.2, threads=1, sources=sources)
    assert len(sources) == 2 and sources.get(paths[0], 1) is first
    assert set(sources._open) == {(paths[0], 1), (paths[2], 1)}


def test_a_source_that_fails_to_decode_is_not_kept_open(tmp_path):
    from training.reader import OpenSources, decode_span

    path = counting_video(tmp_path / "a.mp4", frames=12)
    sources = OpenSources()
    with pytest.raises(ValueError, match="no frames"):
        decode_span(path, 5.0, 6.0, threads=1, sources=sources)
    assert len(sources) == 0


def test_the_trainer_keeps_only_the_current_shards_sources_open(tmp_path):
    from training.config import train_config
    from training.synthetic import SpriteClip, write_sprite_dataset
    from training.trainer import Run

    clips = [SpriteClip(w, (200, 40, 40), d) for w in ("square", "bar") for d in (1, -1, 1, -1)]
    dataset = write_sprite_dataset(tmp_path / "dataset", clips, shard_size=4, clips_per_source=2)
    run = Run(train_config("cpu-stage1"), [dataset], tmp_path / "run")
    for step in range(6):
        run.next_samples(step)
        shard = {r.source for r in run.reader._joined[1]}
        assert {source for source, _ in run.builder.sources._open} <= shard
        assert 1 <= len(run.builder.sources) <= 2  # 2 sources per shard, each opened once

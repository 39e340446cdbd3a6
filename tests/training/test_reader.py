"""The dataset reader: joins tables by clip key, committed shards only, deterministic for a
seed, resumable mid-epoch, 24 fps decoding, a missing source is a counted skip."""
import itertools

import numpy as np
import pytest

from curation.synthetic import write_video
from training.reader import CuratedReader, Position, decode_span, resample_indices


def keys(reader, start=Position(), n=12):
    return [r.clip_key for r, _ in itertools.islice(reader.records(start), n)]


def test_records_join_every_table(sprite_dataset):
    record, _ = next(CuratedReader([sprite_dataset]).records())
    word = record.caption.split()[1]
    assert [e["word"] for e in record.entities] == [word, "floor"]
    assert len(record.references[word]) == 3 and record.background[0] == "floor"


def test_order_is_deterministic_per_seed_and_covers_each_epoch(sprite_dataset):
    a, b = CuratedReader([sprite_dataset], seed=1), CuratedReader([sprite_dataset], seed=2)
    assert keys(a) == keys(CuratedReader([sprite_dataset], seed=1))
    assert keys(a) != keys(b)
    first_epoch = keys(a, n=8)
    assert len(set(first_epoch)) == 8  # one epoch = every clip once


def test_resume_mid_epoch_continues_exactly(sprite_dataset):
    reader = CuratedReader([sprite_dataset], seed=3)
    stream = list(itertools.islice(reader.records(), 11))
    position = stream[4][1]  # after the 5th record, inside the second shard
    assert [r.clip_key for r, _ in stream[5:]] == keys(reader, position, n=6)


def test_a_trainer_reading_a_few_records_per_step_joins_each_shard_once_per_epoch(sprite_dataset, monkeypatch):
    import training.reader

    joins = []
    join = training.reader.join_shard
    monkeypatch.setattr(training.reader, "join_shard", lambda *args: joins.append(args[2]) or join(*args))
    reader, position = CuratedReader([sprite_dataset], seed=3), Position()
    for _ in range(8):  # one epoch, a fresh stream per record, as `Run.next_samples` walks it
        _, position = next(reader.records(position))
    assert sorted(joins) == sorted(shard for _, _, shard in reader.shards)


def test_uncommitted_dataset_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="no _SUCCESS"):
        CuratedReader([tmp_path])


def test_decode_resamples_to_24_fps(tmp_path):
    frames = np.zeros((30, 16, 16, 3), dtype=np.uint8)
    for i in range(30):
        frames[i, :, :, 0] = i * 8  # the frame index in the red channel
    path = write_video(frames, tmp_path / "v.mp4", fps=12, crf=0)
    out = decode_span(str(path), 0.5, 2.0)
    assert len(out) == 36  # 1.5 s at 24 fps
    red = out[:, 8, 8, 0].astype(int) / 8
    assert np.allclose(red[::2], np.arange(6, 24), atol=0.6)  # each 12 fps frame shown twice
    assert resample_indices([0.0, 0.4, 1.0], 0.0, 1.0, fps=4) == [0, 1, 1, 2]


def test_missing_source_is_a_counted_skip(tmp_path):
    from training.config import train_config
    from training.synthetic import SpriteClip, write_sprite_dataset
    from training.trainer import Run

    clips = [SpriteClip("square", (200, 30, 30), d) for d in (1, -1, 1)]
    dataset = write_sprite_dataset(tmp_path / "dataset", clips, shard_size=3)
    (dataset / "videos" / "clip0001.mp4").unlink()
    run = Run(train_config("cpu-stage1"), [dataset], tmp_path / "run")
    for step in range(3):
        bucket, samples = run.next_samples(step)
        assert len(samples) == bucket.batch and all(s.key != "v0001:0-375" for s in samples)
    assert run.skips.to_dict()["source_missing"] >= 2  # once per epoch
    assert run.skips.examples["source_missing"] == "v0001:0-375"


def test_word_beyond_the_token_limit_is_a_counted_skip_reason(sprite_dataset, tmp_path):
    from dataclasses import replace

    from model.encoders import TextEncoderConfig, load_tokenizer
    from model.tiny import write_tiny_model_checkpoints
    from training.buckets import buckets
    from training.conditioning import sample_rng
    from training.config import ConditioningConfig
    from training.samples import SampleBuilder, Skip

    tokenizer = load_tokenizer(TextEncoderConfig(spec=write_tiny_model_checkpoints(tmp_path)["t5"]))
    builder = SampleBuilder(tokenizer, 16, ConditioningConfig(background_prob=0.0), None)
    record, _ = next(CuratedReader([sprite_dataset]).records())
    word = record.entities[0]["word"]
    long = replace(record, caption="far away " * 20 + record.caption)
    bucket = buckets("cpu-tiny")[0]
    assert builder.build(record, bucket, 0, sample_rng(0, 0, 0), materialize=False).positions
    with pytest.raises(Skip) as skip:
        builder.build(long, bucket, 0, sample_rng(0, 0, 0), materialize=False)
    assert skip.value.reason == "word_beyond_token_limit" and word in str(skip.value)

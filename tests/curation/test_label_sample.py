"""`alchemist label-sample`: stratified candidate sheets from a curation output."""
from __future__ import annotations

import argparse
import csv

import numpy as np
import pyarrow as pa
import pytest

from curation.videomae.label_sample import (
    COLUMNS,
    add_label_sample_parser,
    allocate,
    candidates,
    draw,
    label_sample,
    parse_clip_key,
)
from curation.warehouse import write_shard

N_COMMON, N_RARE = 300, 12  # a dataset where low-motion clips are rare (4%)


def _dataset(root, seed=0):
    """Two committed shards: accepted clips, motion-rejected clips (the rare low-motion tail),
    a shot-rejected clip (not a candidate) and motion scores for all scored clips."""
    rng = np.random.default_rng(seed)
    videos, clips, rejections, scores = [], [], [], []
    for i in range(N_COMMON + N_RARE + 1):
        vid = f"vid{i:03d}"
        videos.append(dict(video_id=vid, source=f"/data/{vid}.mp4"))
        start, end = 1.0 + i % 3, 4.5 + i % 3
        key = f"{vid}:{round(start * 1000)}-{round(end * 1000)}"
        if i == N_COMMON + N_RARE:  # rejected before the motion stage
            rejections.append(dict(key=key, input_key=f"in{i}", clip_key=key, level="clip",
                                   stage="shots", reason="shot_boundary"))
            continue
        rare = i >= N_COMMON
        residual = rng.uniform(0.0005, 0.004) if rare else rng.uniform(0.02, 0.2)
        raw = rng.uniform(0.01, 0.03) if rare else rng.uniform(0.03, 0.3)
        scores += [dict(clip_key=key, stage="motion", name="motion_residual", value=residual),
                   dict(clip_key=key, stage="motion", name="motion_raw", value=raw),
                   dict(clip_key=key, stage="shots", name="shot_score", value=0.01)]
        if rare:
            rejections.append(dict(key=key, input_key=f"in{i}", clip_key=key, level="clip",
                                   stage="motion", reason="still_image"))
        else:
            clips.append(dict(clip_key=key, video_id=vid, input_key=f"in{i}",
                              source=f"/data/{vid}.mp4", caption=f"clip {i}",
                              start_s=start, end_s=end))
    tables = dict(videos=videos, clips=clips, rejections=rejections, clip_scores=scores)
    half = {name: (rows[::2], rows[1::2]) for name, rows in tables.items()}
    for shard in (0, 1):
        write_shard(root, shard, {name: pa.Table.from_pylist(parts[shard])
                                  for name, parts in half.items()}, {"test": True})
    return root


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return _dataset(tmp_path_factory.mktemp("curated"))


def test_parse_clip_key_round_trips_keys():
    from curation.keys import clip_key

    assert parse_clip_key(clip_key("a:b", 1.25, 3.5)) == ("a:b", 1.25, 3.5)


def test_allocate_shares_equally_and_caps_small_cells():
    assert allocate({"a": 100, "b": 100, "c": 2}, 30) == {"a": 14, "b": 14, "c": 2}
    assert allocate({"a": 3, "b": 1}, 10) == {"a": 3, "b": 1}
    assert sum(allocate({"a": 7, "b": 9, "c": 11}, 20).values()) == 20


def test_candidates_cover_accepted_and_motion_rejected_clips(dataset):
    rows = {r["clip_key"]: r for r in candidates(dataset)}
    assert len(rows) == N_COMMON + N_RARE  # the shot-rejected clip is not a candidate
    rejected = [r for r in rows.values() if r["status"] == "rejected"]
    assert len(rejected) == N_RARE and all(r["reason"] == "still_image" for r in rejected)
    r = rejected[0]
    vid, start, end = parse_clip_key(r["clip_key"])
    assert (r["path"], r["start_s"], r["end_s"]) == (f"/data/{vid}.mp4", start, end)
    assert all(r["motion_residual"] is not None and r["motion_raw"] is not None
               for r in rows.values())


def test_stratified_draw_finds_rare_low_motion_clips(dataset):
    rows = candidates(dataset)
    n = 40
    sample = draw(rows, n, bins=4, seed=0)
    assert len(sample) == n and len({r["clip_key"] for r in sample}) == n
    rare = sum(r["status"] == "rejected" for r in sample)
    # a uniform sample of 40 from 312 expects 1.5 rare clips; stratification must do far better
    assert rare >= 8
    assert draw(rows, n, bins=4, seed=0) == sample
    assert draw(rows, n, bins=4, seed=1) != sample


def test_sheet_is_a_label_file_train_filter_reads(dataset, tmp_path):
    from curation.videomae.train import load_labels

    path, per_cell = label_sample(dataset, tmp_path / "sheet.csv", n=25, seed=3)
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == COLUMNS and len(rows) == 25 == sum(per_cell.values())
    assert all(r["label"] == "" for r in rows)
    rows[0]["label"], rows[1]["label"] = "still foreground image", "desirable"
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    items = load_labels(path)  # unlabelled rows are skipped
    assert [(i.label, i.path, i.start_s, i.end_s) for i in items] == [
        ("still_image", rows[0]["path"], float(rows[0]["start_s"]), float(rows[0]["end_s"])),
        ("desirable", rows[1]["path"], float(rows[1]["start_s"]), float(rows[1]["end_s"]))]


def test_cli_writes_the_sheet(dataset, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_label_sample_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["label-sample", str(dataset), "--out", str(tmp_path / "s.csv"),
                              "-n", "10"])
    assert args.func(args) == 0
    assert "wrote 10 clips" in capsys.readouterr().out
    assert (tmp_path / "s.csv").exists()


def test_empty_or_missing_dataset_is_an_operator_error(tmp_path):
    from curation.errors import OperatorError

    with pytest.raises(OperatorError, match="does not exist"):
        label_sample(tmp_path / "nope", tmp_path / "s.csv")
    write_shard(tmp_path / "empty", 0, {"clips": pa.Table.from_pylist([])}, {})
    with pytest.raises(OperatorError, match="no candidate clips"):
        label_sample(tmp_path / "empty", tmp_path / "s.csv")

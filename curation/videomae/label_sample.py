"""`alchemist label-sample`: draw candidate clips for a person to label (paper A.1).

The paper labels 40K randomly sampled training videos. Undesirable kinds are rare (a few
percent each), so a uniform sample of a few hundred clips may hold none of a kind. We stratify
instead, by the motion stage's two scores in `clip_scores`:

  motion_raw       how much moves at all (slight motion lives at the bottom)
  motion_residual  what is left after one camera motion (still-image pans at the bottom)

Each score is cut into `bins` bins of equal width in log scale; every non-empty cell of the
grid gets an equal share of the sample (a cell smaller than its share gives all its clips and
the remainder goes to the others), so the low-motion tails, where the undesirable kinds
concentrate, are always represented. Clips without motion scores (the motion stage did not run) are one more cell.

The sheet has the columns `alchemist train-filter` reads (path, label, start_s, end_s) with
`label` left empty, plus context for the labeller (status, reason, scores, caption).
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path
from typing import Any

from curation.videomae.classes import LABELS

MOTION_SCORES = ("motion_residual", "motion_raw")
# Clips rejected before the undesirable-clip filters (no such video, a shot boundary) are not
# candidates: they never reach training whatever their class.
BEFORE_FILTERS = ("ingest", "shots")
SCORE_FLOOR = 1e-6  # frame widths/s; a frozen clip's flow of 0 is binned with this (our choice)
COLUMNS = ("path", "label", "start_s", "end_s", "clip_key", "status", "rejected_by", "reason",
           "motion_residual", "motion_raw", "stratum", "caption")


# ---------------------------------------------------------------- candidates


def _read(dataset_dir: Path, table: str):
    from curation.warehouse import read_table

    return read_table(dataset_dir, table)


def parse_clip_key(key: str) -> tuple[str, float, float]:
    """`<video id>:<start ms>-<end ms>` -> (video id, start_s, end_s)."""
    vid, _, span = key.rpartition(":")
    start, _, end = span.partition("-")
    return vid, int(start) / 1000, int(end) / 1000


def candidates(dataset_dir: str | Path) -> list[dict]:
    """Every clip of a curation output that has a path and a window, accepted or rejected,
    with its motion scores (None when the motion stage did not score it)."""
    root = Path(dataset_dir)
    scores: dict[str, dict] = {}
    for row in _read(root, "clip_scores").to_pylist():
        if row["stage"] == "motion" and row["name"] in MOTION_SCORES:
            scores.setdefault(row["clip_key"], {})[row["name"]] = row["value"]
    out: dict[str, dict] = {}
    for row in _read(root, "clips").to_pylist():
        out[row["clip_key"]] = dict(path=row["source"], start_s=row["start_s"], end_s=row["end_s"],
                                    clip_key=row["clip_key"], status="accepted", rejected_by=None,
                                    reason=None, caption=row["caption"])
    sources = {v["video_id"]: v["source"] for v in _read(root, "videos").to_pylist()}
    for row in _read(root, "rejections").to_pylist():
        key = row["clip_key"]
        if row["level"] != "clip" or not key or key in out or row["stage"] in BEFORE_FILTERS:
            continue
        vid, start, end = parse_clip_key(key)
        if vid not in sources:
            continue
        out[key] = dict(path=sources[vid], start_s=start, end_s=end, clip_key=key,
                        status="rejected", rejected_by=row["stage"], reason=row["reason"],
                        caption=None)
    for key, row in out.items():
        s = scores.get(key, {})
        row.update({name: s.get(name) for name in MOTION_SCORES})
    return list(out.values())


# ---------------------------------------------------------------- stratified draw


def strata(rows: list[dict], bins: int) -> list[str]:
    """A cell name per row: `r<i>_m<j>` (residual bin i, raw bin j; 0 = least motion).

    Bins are equal-width in log10(score) between the smallest and largest score, not
    quantiles: a rare low-motion tail gets cells of its own instead of sharing the lowest
    quantile with many ordinary clips.
    """
    import numpy as np

    scored = [i for i, r in enumerate(rows) if all(r[n] is not None for n in MOTION_SCORES)]
    names = ["no_motion_scores"] * len(rows)
    if not scored:
        return names
    index = {}
    for name in MOTION_SCORES:
        logs = np.log10(np.maximum([rows[i][name] for i in scored], SCORE_FLOOR))
        edges = np.linspace(logs.min(), logs.max(), bins + 1)[1:-1]
        index[name] = np.searchsorted(edges, logs, side="right")
    for k, i in enumerate(scored):
        names[i] = f"r{index['motion_residual'][k]}_m{index['motion_raw'][k]}"
    return names


def allocate(sizes: dict[str, int], n: int) -> dict[str, int]:
    """Equal shares of `n` over cells, capped by cell size, remainder re-shared."""
    take = dict.fromkeys(sizes, 0)
    left = min(n, sum(sizes.values()))
    while left > 0:
        open_cells = sorted(c for c in sizes if take[c] < sizes[c])
        share, extra = divmod(left, len(open_cells))
        for k, c in enumerate(open_cells):
            add = min(share + (k < extra), sizes[c] - take[c])
            take[c] += add
            left -= add
    return take


def draw(rows: list[dict], n: int, bins: int = 4, seed: int = 0) -> list[dict]:
    """A seeded, stratified sample of `n` rows (all of them when there are fewer)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    cells = strata(rows, bins)
    members: dict[str, list[int]] = {}
    for i, cell in enumerate(cells):
        members.setdefault(cell, []).append(i)
    take = allocate({c: len(m) for c, m in members.items()}, n)
    picked = []
    for cell in sorted(members):
        chosen = rng.choice(len(members[cell]), size=take[cell], replace=False)
        picked += [{**rows[members[cell][k]], "stratum": cell} for k in sorted(chosen)]
    order = rng.permutation(len(picked))  # shuffled, so the sheet's order hints nothing
    return [picked[i] for i in order]


def write_sheet(rows: list[dict], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(COLUMNS), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "label": ""})
    return path


def label_sample(dataset_dir: str | Path, out: str | Path, n: int = 500, bins: int = 4,
                 seed: int = 0) -> tuple[Path, dict[str, int]]:
    """Write a label sheet of `n` stratified candidate clips; returns (path, clips per cell)."""
    from curation.warehouse import DatasetError

    rows = candidates(dataset_dir)
    if not rows:
        raise DatasetError(f"{dataset_dir} has no candidate clips (no clips or clip-level "
                           f"rejections with a known video); run `alchemist curate` on it first")
    sample = draw(rows, n, bins, seed)
    per_cell: dict[str, int] = {}
    for row in sample:
        per_cell[row["stratum"]] = per_cell.get(row["stratum"], 0) + 1
    return write_sheet(sample, out), per_cell


# ---------------------------------------------------------------- command line


def add_label_sample_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "label-sample", help="write a CSV of candidate clips (stratified by motion) to label",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dir", help="a curation output directory (alchemist curate --out)")
    p.add_argument("--out", required=True, help="label sheet CSV to write")
    p.add_argument("-n", "--n", type=int, default=500, help="clips to sample")
    p.add_argument("--bins", type=int, default=4, help="log-scale bins per motion score")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_label_sample)
    return p


def _label_sample(args: argparse.Namespace) -> int:
    path, per_cell = label_sample(args.dir, args.out, args.n, args.bins, args.seed)
    total = sum(per_cell.values())
    print(f"wrote {total} clips to {path} from {len(per_cell)} motion strata")
    print(f"fill its `label` column with one of: {', '.join(LABELS)}; then run "
          f"`alchemist train-filter --labels {path} --out DIR`")
    return 0

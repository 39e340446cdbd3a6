"""`alchemist eval-filter`: the motion (and VideoMAE) filter measured on the labelled set.

The labelled set is `curation.synthetic_motion`: clips whose class and generator parameters
are known. Thresholds are chosen on the train split only (`choose_thresholds`, written to
`curation/stages/motion_thresholds.py` by `--write-thresholds`); the held-out split, with
disjoint seeds, photos and parameter bands, is where the numbers are reported:

  keep precision   of the clips the filter keeps, the fraction that are movers
  target recall    of movers covering >= 1% of the frame at >= 0.08 frame sizes/s, the
                   fraction kept, per background type
  rejected         of the negatives (pans, zooms, rotations, static photos, shakes), the
                   fraction rejected, per kind
  confusion        true class x predicted class (desirable = kept)
"""
from __future__ import annotations

import math
import statistics
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow as pa

from curation import synthetic_motion as sm
from curation.stage import Stage

KEPT = "desirable"  # the predicted class of a clip the filter keeps
# The smallest value each score tells apart from nothing at the stage's 160 px: one changed
# pixel of 160x120; a thousandth of a frame size per second (0.16 px/s).
SCORE_RESOLUTION = {"motion_changed_frac": 1 / (160 * 120), "motion_residual": 1e-3}
SCORE_COLUMNS = ("motion_residual", "motion_changed_frac", "motion_raw", "motion_camera_steadiness")


# ---------------------------------------------------------------- scoring


def score_clips(specs: list[sm.ClipSpec], stage: Stage, folder: str | Path | None = None) -> list[dict]:
    """Render, encode and run `stage` on every clip; one dict per clip: the spec, the
    stage's scores and `predicted` (KEPT or the rejection reason)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(folder or tmp)
        paths = [sm.write(spec, folder) for spec in specs]
        table = pa.Table.from_pylist([
            dict(clip_key=spec.name, source=str(path), start_s=0.0, end_s=sm.N_FRAMES / sm.FPS)
            for spec, path in zip(specs, paths)])
        stage.setup()
        out = stage(table).to_pylist()
    rows = []
    for spec, row in zip(specs, out):
        scores = {k: row[k] for k in stage.scores if k in row}
        rows.append({**asdict(spec), "name": spec.name, "target": spec.target, **scores,
                     "predicted": row["reason"] or KEPT})
    return rows


# ---------------------------------------------------------------- metrics


@dataclass
class Report:
    """Precision, recall and the confusion matrix of one filter on one split."""

    filter: str
    split: str
    confusion: Counter = field(default_factory=Counter)  # (true, predicted) -> clips
    target: Counter = field(default_factory=Counter)  # (background, kept?) -> target movers
    negatives: Counter = field(default_factory=Counter)  # (kind, rejected?) -> clips
    wrong: list[str] = field(default_factory=list)  # one line per misjudged clip

    @classmethod
    def of(cls, rows: list[dict], filter_name: str, split: str) -> "Report":
        report = cls(filter_name, split)
        for r in rows:
            report.confusion[(r["label"], r["predicted"])] += 1
            if r["target"]:
                report.target[(r["background"].split(":")[0], r["predicted"] == KEPT)] += 1
            if r["kind"] != "mover":
                report.negatives[(r["kind"], r["predicted"] != KEPT)] += 1
            misjudged = (r["label"] == "desirable") != (r["predicted"] == KEPT)
            if misjudged and (r["target"] or r["kind"] != "mover"):
                report.wrong.append(_describe(r))
        return report

    def _ratio(self, counter: Counter, keys) -> tuple[int, int]:
        hit = sum(counter[(k, True)] for k in keys)
        return hit, hit + sum(counter[(k, False)] for k in keys)

    def keep_precision(self) -> tuple[int, int]:
        kept = {t: n for (t, p), n in self.confusion.items() if p == KEPT}
        return kept.get("desirable", 0), sum(kept.values())

    def target_recall(self, background: str | None = None) -> tuple[int, int]:
        return self._ratio(self.target, [background] if background else sm.BACKGROUNDS)

    def rejected(self, kinds: tuple[str, ...]) -> tuple[int, int]:
        return self._ratio(self.negatives, kinds)

    def class_metrics(self) -> dict[str, tuple[float, float]]:
        """Class -> (precision, recall); NaN where a class was never predicted / present."""
        out = {}
        for label in sm.LABELS:
            tp = self.confusion[(label, label)]
            predicted = sum(n for (_, p), n in self.confusion.items() if p == label)
            actual = sum(n for (t, _), n in self.confusion.items() if t == label)
            out[label] = (tp / predicted if predicted else float("nan"),
                          tp / actual if actual else float("nan"))
        return out

    def lines(self) -> list[str]:
        predicted = sorted({p for _, p in self.confusion}, key=_class_order)
        width = max(len(p) for p in (*predicted, *sm.LABELS)) + 2
        out = [f"{self.filter} filter on the {self.split} split "
               f"({sum(self.confusion.values())} clips)", "",
               "confusion (rows: true class, columns: predicted)",
               " " * width + "".join(p.rjust(width) for p in predicted)]
        for label in sm.LABELS:
            out.append(label.ljust(width) + "".join(
                str(self.confusion[(label, p)]).rjust(width) for p in predicted))
        out += ["", "class".ljust(width) + "precision".rjust(11) + "recall".rjust(9)]
        for label, (p, r) in self.class_metrics().items():
            out.append(label.ljust(width) + f"{p:11.3f}{r:9.3f}")
        out += ["", _fraction("keep precision (kept clips that are movers)", self.keep_precision()),
                _fraction("target recall (movers >= 1% at >= 0.08 frame sizes/s)", self.target_recall())]
        out += [_fraction(f"  on {bg} backgrounds", self.target_recall(bg)) for bg in sm.BACKGROUNDS]
        out.append(_fraction("still images rejected (pans, zooms, rotations, static photos)",
                             self.rejected(STILL_KINDS)))
        out.append(_fraction("camera shakes rejected", self.rejected(("shake",))))
        if self.wrong:
            out += ["", "misjudged (target movers and negatives):", *self.wrong]
        return out


STILL_KINDS = ("pan", "zoom", "rotate", "static_noise")


def _describe(r: dict) -> str:
    scores = " ".join(f"{k.removeprefix('motion_')}={r[k]:.4g}" for k in SCORE_COLUMNS
                      if r.get(k) is not None)
    params = (f"area {r['area']:.3f} speed {r['speed']:.3f} {'textured' if r['textured'] else 'flat'}"
              f" {r['path']} pan {r['camera_pan']:.3f}" if r["kind"] == "mover" else f"rate {r['speed']:.3g} "
              f"noise {r['noise_sigma']:.1f} shake {r['shake_px']:.2f}")
    return (f"  {r['name']} {r['background']} {r['hw'][1]}x{r['hw'][0]} crf {r['crf']} {params}: "
            f"{r['label']} -> {r['predicted']}  {scores}")


def _class_order(label: str) -> tuple[int, str]:
    return (sm.LABELS.index(label) if label in sm.LABELS else len(sm.LABELS), label)


def _fraction(text: str, pair: tuple[int, int]) -> str:
    hit, total = pair
    value = f"{hit / total:.3f}" if total else "n/a"
    return f"{text}: {value} ({hit}/{total})"


# ---------------------------------------------------------------- choosing thresholds


def choose_thresholds(rows: list[dict]) -> dict[str, float]:
    """Thresholds from TRAIN rows only. Each independent-motion score's threshold is a
    geometric midpoint above the highest value a negative reached (at least the score's
    resolution; negatives that look like movers are conceded, see `conceded`): up to the
    lowest target mover when the score separates the two on its own, else up to the median
    target (the score is then one witness of two). `frozen_max` (mean speed) and
    `steady_min` (camera steadiness) are the pair that labels the most negatives right:
    below `frozen_max` nothing moves (a still photo), below `steady_min` the camera only
    shakes (slight motion), otherwise it travels over a still image."""
    targets = [r for r in rows if r["target"]]
    given_up = {id(r) for r in conceded(rows)}
    negatives = [r for r in rows if r["label"] != "desirable" and id(r) not in given_up]

    def midpoint(score: str) -> float:
        high = max(SCORE_RESOLUTION[score], *(r[score] for r in negatives))
        low = min(r[score] for r in targets)
        return math.sqrt(high * (low if low > high else statistics.median(r[score] for r in targets)))

    frozen_max, steady_min = _best_cuts(negatives)
    thresholds = {"residual_min": midpoint("motion_residual"),
                  "changed_min": midpoint("motion_changed_frac"),
                  "frozen_max": frozen_max, "steady_min": steady_min}
    return {k: float(f"{v:.4g}") for k, v in thresholds.items()}


REJECTION_GOAL = 0.95  # issue 10: the share of still images and shakes to reject
EVIDENCE_SCORES = ("motion_residual", "motion_changed_frac")


def conceded(rows: list[dict]) -> list[dict]:
    """Train negatives above the median target mover on every evidence score: no threshold
    on those scores rejects them without losing half the movers (a pan over a photo whose
    detail is one compact object on a flat wall looks like that object moving over the
    wall), so the thresholds are not raised for them, as long as they are within the
    (1 - REJECTION_GOAL) share of negatives the goal allows; beyond it, none is conceded."""
    targets = [r for r in rows if r["target"]]
    negatives = [r for r in rows if r["label"] != "desirable"]
    median = {s: statistics.median(r[s] for r in targets) for s in EVIDENCE_SCORES}
    like_movers = [r for r in negatives if all(r[s] > median[s] for s in EVIDENCE_SCORES)]
    return like_movers if len(like_movers) <= (1 - REJECTION_GOAL) * len(negatives) else []


def _midpoints(values: list[float]) -> list[float]:
    ordered = sorted(set(values))
    return [ordered[0] / 2] + [(a + b) / 2 for a, b in zip(ordered, ordered[1:])] + [ordered[-1] * 2]


def _best_cuts(negatives: list[dict]) -> tuple[float, float]:
    """(frozen_max, steady_min) labelling the most negatives right, each the median of its
    tied candidates (midpoints between neighbouring train values): the middle of the gap."""
    def right(frozen: float, steady: float) -> int:
        return sum(("still_image" if r["motion_raw"] < frozen else
                    "slight_motion" if r["motion_camera_steadiness"] < steady else "still_image")
                   == r["label"] for r in negatives)

    pairs = [(f, s) for f in _midpoints([r["motion_raw"] for r in negatives])
             for s in _midpoints([r["motion_camera_steadiness"] for r in negatives])]
    score = {p: right(*p) for p in pairs}
    best = [p for p in pairs if score[p] == max(score.values())]
    middle = (statistics.median_low(f for f, _ in best), statistics.median_low(s for _, s in best))
    return middle if right(*middle) == max(score.values()) else best[0]


# ---------------------------------------------------------------- the generated thresholds file


THRESHOLDS_MODULE = Path(__file__).parent / "stages" / "motion_thresholds.py"
STORED = ("name", "label", "kind", "background", "target", *SCORE_COLUMNS)


def stored_rows(rows: list[dict]) -> list[tuple]:
    """The train rows as the thresholds file stores them (scores to 4 significant digits)."""
    return [tuple(float(f"{r[k]:.4g}") if k in SCORE_COLUMNS else r[k] for k in STORED)
            for r in sorted(rows, key=lambda r: r["name"])]


def thresholds_module(stored: list[tuple]) -> str:
    """The text of `motion_thresholds.py` for these stored train rows."""
    rows = [dict(zip(STORED, row)) for row in stored]
    thresholds = choose_thresholds(rows)
    groups: dict[str, list[dict]] = {}
    for r in rows:
        key = r["kind"] if r["kind"] != "mover" else f"mover over {r['background'].split(':')[0]}"
        groups.setdefault(key, []).append(r)
    head = f"  {'train clips':24s}{'n':>4s}" + "".join(f"{c.removeprefix('motion_'):>22s}" for c in SCORE_COLUMNS)
    table = [head] + [
        f"  {key:24s}{len(g):4d}" + "".join(
            f"{min(r[c] for r in g):>11.4g}-{max(r[c] for r in g):<10.4g}" for c in SCORE_COLUMNS)
        for key, g in sorted(groups.items())]
    lines = [
        '"""GENERATED by `alchemist eval-filter --write-thresholds`: do not edit by hand.',
        "",
        "The motion stage's default thresholds, chosen on the TRAIN split of the labelled set",
        "(curation/synthetic_motion.py) by `curation.motion_eval.choose_thresholds`; the",
        "held-out split reports how they do (`alchemist eval-filter`). Score ranges per group:",
        "",
        *table,
        "",
        "Negatives conceded (they score like movers; see `motion_eval.conceded`):",
        *(f"  {r['name']} ({r['kind']} over {r['background']})" for r in conceded(rows)),
        "",
        "tests/curation/test_motion_eval.py fails when this file drifts from what the command",
        "produces: thresholds re-chosen from TRAIN_SCORES, and a sample of clips re-scored.",
        '"""',
        "",
        f"THRESHOLDS = {thresholds!r}",
        "",
        f"# {', '.join(STORED)}",
        "TRAIN_SCORES = (",
        *(f"    {row!r}," for row in stored),
        ")",
        "",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------- the command


def add_eval_filter_parser(sub) -> None:
    p = sub.add_parser("eval-filter", help="precision, recall and confusion matrix of the "
                       "motion filter (and a VideoMAE checkpoint) on the labelled motion set")
    p.add_argument("--split", choices=sm.SPLITS, default="heldout")
    p.add_argument("--every", type=int, default=1, help="score every Nth clip (a quick look)")
    p.add_argument("--checkpoint", help="also evaluate this VideoMAE classifier "
                   "(an `alchemist train-filter --out` directory or a hub id)")
    p.add_argument("--write-thresholds", action="store_true", help="score the train split, "
                   f"choose the motion thresholds and rewrite {THRESHOLDS_MODULE.name}")
    p.set_defaults(func=run_eval_filter)


def run_eval_filter(args) -> int:
    from curation.stages.motion import MotionStage

    if args.write_thresholds:
        rows = score_clips(sm.specs("train")[::args.every], MotionStage())
        THRESHOLDS_MODULE.write_text(thresholds_module(stored_rows(rows)))
        print(f"wrote {THRESHOLDS_MODULE}: {choose_thresholds(rows)}")
        return 0
    specs = sm.specs(args.split)[::args.every]
    print("\n".join(Report.of(score_clips(specs, MotionStage()), "motion", args.split).lines()))
    if args.checkpoint:
        from curation.stages.videomae import VideoMAEStage

        rows = score_clips(specs, VideoMAEStage(model=args.checkpoint))
        print("\n" + "\n".join(Report.of(rows, "videomae", args.split).lines()))
    return 0

"""The motion filter on the held-out split of the labelled motion set (curation/synthetic_motion.py).

Thresholds were chosen on the train split (`alchemist eval-filter --write-thresholds`); this
reports the held-out numbers `alchemist eval-filter` prints, and the stage's time per clip
(decode + flow at two spacings, 160 px) on this machine.
"""
from __future__ import annotations

import time

GOAL = 0.95  # issue 10: held-out recall, keep precision and still-image rejection


def _row(metric: str, pair: tuple[int, int], notes: str) -> dict:
    hit, total = pair
    return {"benchmark": "motion", "metric": metric, "value": hit / total if total else float("nan"),
            "unit": "fraction", "notes": f"{hit}/{total}; {notes}"}


def run() -> list[dict]:
    from curation import motion_eval as me
    from curation import synthetic_motion as sm
    from curation.stages.motion import MotionStage

    specs = sm.specs("heldout")
    start = time.monotonic()
    report = me.Report.of(me.score_clips(specs, MotionStage()), "motion", "heldout")
    seconds = (time.monotonic() - start) / len(specs)
    goal = f"goal >= {GOAL}"
    rows = [_row("held-out keep precision", report.keep_precision(), goal),
            _row("held-out target recall", report.target_recall(),
                 f"movers >= 1% of the frame at >= 0.08 frame sizes/s; {goal}")]
    rows += [_row(f"held-out target recall, {bg} background", report.target_recall(bg), goal)
             for bg in sm.BACKGROUNDS]
    rows += [_row("held-out still images rejected", report.rejected(me.STILL_KINDS),
                  f"pans, zooms, rotations, static photos; {goal}"),
             _row("held-out camera shakes rejected", report.rejected(("shake",)), "no goal"),
             {"benchmark": "motion", "metric": "render + encode + score", "value": seconds,
              "unit": "s/clip", "notes": "1.5 s clips at 160x120 / 320x240, one process"}]
    return rows

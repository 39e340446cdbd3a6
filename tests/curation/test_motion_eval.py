"""The labelled motion set, its split, the metrics and the generated thresholds file."""
from collections import Counter

import numpy as np
import pytest

from curation import motion_eval as me
from curation import synthetic_motion as sm
from curation.cli import main
from curation.stages import motion_thresholds
from curation.stages.motion import MotionStage


# ---------------------------------------------------------------- the split


def test_splits_share_no_seed_photo_or_parameter_band():
    train, heldout = sm.specs("train"), sm.specs("heldout")
    assert not {s.seed for s in train} & {s.seed for s in heldout}
    photos = [{s.background for s in split if s.background.startswith("photo:")}
              for split in (train, heldout)]
    assert photos[0] and photos[1] and not photos[0] & photos[1]
    # the later held-out draws: same settings, seeds no other split uses
    seeds = [{s.seed for s in sm.specs(split)} for split in sm.SPLITS]
    assert sum(map(len, seeds)) == len(set().union(*seeds))
    assert all(sm.PHOTOS[split] == sm.PHOTOS["heldout"] for split in sm.SPLITS[1:])
    # every continuous parameter falls in its split's bands (even bands train, odd held-out)
    for split in sm.SPLITS:
        parity = sm.BAND_PARITY[split]
        for s in sm.specs(split):
            if s.kind == "mover":
                for value, (lo, hi) in ((s.area, sm.AREA), (s.speed, sm.SPEED)):
                    assert _band(value, lo, hi) % 2 == parity, (s, value)


def _band(value: float, lo: float, hi: float) -> int:
    return int(np.log(value / lo) / np.log(hi / lo) * sm.N_BANDS)


def test_train_adds_fast_camera_motions_over_low_texture_photos():
    train, heldout = sm.specs("train"), sm.specs("heldout")
    extra = train[len(heldout):]
    assert len(extra) == sum(sm.TRAIN_EXTRA_NEGATIVES.values())
    rates = {"pan": sm.PAN_SPEED, "zoom": sm.ZOOM_RATE, "rotate": sm.ROTATE_RATE}
    for s in extra:
        assert s.background.removeprefix("photo:") in sm.LOW_TEXTURE_PHOTOS
        assert set(sm.LOW_TEXTURE_PHOTOS) <= set(sm.PHOTOS["train"])
        assert _band(s.speed, *rates[s.kind]) in (sm.N_BANDS // 2, sm.N_BANDS // 2 + 2), s


def test_every_background_has_target_movers_and_every_negative_kind_is_there():
    for split in sm.SPLITS:
        clips = sm.specs(split)
        targets = Counter(s.background.split(":")[0] for s in clips if s.target)
        assert set(targets) == set(sm.BACKGROUNDS) and min(targets.values()) >= 5, (split, targets)
        assert {s.kind for s in clips} == {"mover", *sm.NEGATIVES}
        assert {s.label for s in clips} == set(sm.LABELS)


def test_clips_are_a_pure_function_of_the_spec():
    spec = sm.specs("heldout")[3]
    a, b = sm.render(spec), sm.render(spec)
    assert a.shape == (sm.N_FRAMES, *spec.hw, 3) and np.array_equal(a, b)
    assert not np.array_equal(a[0], a[-1])  # the mover moved


# ---------------------------------------------------------------- metrics and choices


def _row(label, predicted, kind="mover", background="flat", target=True):
    return dict(label=label, predicted=predicted, kind=kind, background=background,
                target=target and kind == "mover", name=f"{kind}-{background}", hw=(120, 160),
                crf=23, area=0.05, speed=0.2, textured=False, path="straight", camera_pan=0.0,
                noise_sigma=0.0, shake_px=0.0, motion_residual=0.1)


def test_report_counts_confusion_precision_and_recall():
    rows = [_row("desirable", "desirable"), _row("desirable", "still_image", background="noise"),
            _row("desirable", "desirable", background="photo:coins", target=False),
            _row("still_image", "desirable", kind="pan", background="photo:moon"),
            _row("still_image", "still_image", kind="zoom", background="photo:moon"),
            _row("slight_motion", "still_image", kind="shake", background="photo:moon")]
    report = me.Report.of(rows, "motion", "heldout")
    assert report.keep_precision() == (2, 3)
    assert report.target_recall() == (1, 2) and report.target_recall("noise") == (0, 1)
    assert report.rejected(me.STILL_KINDS) == (1, 2) and report.rejected(("shake",)) == (1, 1)
    metrics = report.class_metrics()
    assert metrics["desirable"] == pytest.approx((2 / 3, 2 / 3))
    assert metrics["still_image"] == pytest.approx((1 / 3, 1 / 2))
    text = "\n".join(report.lines())
    assert "keep precision (kept clips that are movers): 0.667 (2/3)" in text
    assert "on noise backgrounds: 0.000 (0/1)" in text
    assert "mover-noise noise 160x120 crf 23 area 0.050" in text  # the misjudged target is listed
    assert "pan-photo:moon" in text and "shake-photo:moon" not in text


def test_thresholds_sit_between_train_negatives_and_targets_and_cuts_split_the_classes():
    def row(label, residual, changed, raw, steadiness=1.0):
        return dict(label=label, target=label == "desirable", motion_residual=residual,
                    motion_changed_frac=changed, motion_raw=raw, motion_camera_steadiness=steadiness)

    rows = [row("still_image", 0.04, 0.001, 0.0001, 0.1),  # sensor noise: the "camera" jitters
            row("still_image", 0.02, 0.0, 0.2, 0.95),
            row("slight_motion", 0.01, 0.0, 0.01, 0.3), row("slight_motion", 0.01, 0.0, 0.005, 0.2),
            row("desirable", 0.03, 0.1, 1.0), row("desirable", 0.16, 0.004, 1.0),
            row("desirable", 0.25, 0.016, 1.0)]
    t = me.choose_thresholds(rows)
    # residual ranges overlap: up to the median target; changed separates: up to the lowest
    assert t["residual_min"] == pytest.approx(np.sqrt(0.04 * 0.16), rel=1e-3)
    assert t["changed_min"] == pytest.approx(np.sqrt(0.001 * 0.004), rel=1e-3)
    # a score no negative ever raised starts from its resolution, not from zero
    quiet = [dict(r, motion_changed_frac=0.0) if r["label"] != "desirable" else r for r in rows]
    assert me.choose_thresholds(quiet)["changed_min"] == pytest.approx(
        np.sqrt(me.SCORE_RESOLUTION["motion_changed_frac"] * 0.004), rel=1e-3)
    assert 0.0001 < t["frozen_max"] <= 0.005 and 0.3 < t["steady_min"] < 0.95
    stage = MotionStage(**t)
    for r in rows:  # every clip ends up in its own class under the chosen thresholds
        assert (stage.decide(r).reason or "desirable") == r["label"], r


def test_negatives_that_score_like_movers_are_conceded_within_the_goal_only():
    def row(label, residual, changed):
        return dict(name=f"{label}-{residual}", label=label, target=label == "desirable",
                    motion_residual=residual, motion_changed_frac=changed, motion_raw=0.1,
                    motion_camera_steadiness=1.0)

    movers = [row("desirable", 0.1 * k, 0.01 * k) for k in range(1, 6)]
    negatives = [row("still_image", 0.01, 0.0005) for _ in range(19)]
    like_a_mover = row("still_image", 0.6, 0.2)  # above the median mover on both scores
    half_like = row("still_image", 0.6, 0.001)  # above it on one score only
    rows = [*movers, *negatives, like_a_mover]
    assert me.conceded(rows) == [like_a_mover]  # 1 of 20 negatives: within 5%
    t = me.choose_thresholds(rows)
    assert t == me.choose_thresholds([*movers, *negatives])  # thresholds not raised for it
    assert t["residual_min"] < 0.1 and t["changed_min"] < 0.01
    assert me.conceded([*movers, *negatives, half_like]) == []
    assert me.conceded([*movers, *negatives[:10], like_a_mover]) == []  # 1 of 11: beyond 5%


# ---------------------------------------------------------------- the generated file


def test_thresholds_file_is_what_the_command_writes_from_its_train_scores():
    stored = list(motion_thresholds.TRAIN_SCORES)
    assert len(stored) == len(sm.specs("train"))
    assert me.THRESHOLDS_MODULE.read_text() == me.thresholds_module(stored)
    for name, value in motion_thresholds.THRESHOLDS.items():
        assert getattr(MotionStage, name) == value


@pytest.mark.slow
def test_stored_train_scores_match_a_rescoring_of_a_sample(tmp_path):
    """Drift in the generator or the scores (not only the choice) fails here."""
    specs = sm.specs("train")[::35]  # one of each group: movers and negatives
    stored = {row[0]: row for row in motion_thresholds.TRAIN_SCORES}
    for row in me.stored_rows(me.score_clips(specs, MotionStage(), tmp_path)):
        assert row[:5] == stored[row[0]][:5]
        assert row[5:] == pytest.approx(stored[row[0]][5:], rel=0.02, abs=1e-4), row[0]


def test_eval_filter_command_prints_the_confusion_matrix(capsys):
    assert main(["eval-filter", "--split", "heldout", "--every", "47"]) == 0
    out = capsys.readouterr().out
    assert "motion filter on the heldout split (3 clips)" in out
    assert "confusion (rows: true class, columns: predicted)" in out
    assert "target recall" in out and "still images rejected" in out


def test_eval_filter_runs_a_videomae_checkpoint_on_the_same_clips(tmp_path, capsys):
    """The real VideoMAE stage path, on a tiny random checkpoint (no real weights here)."""
    from curation.videomae.tiny import write_tiny_videomae

    ckpt = write_tiny_videomae(tmp_path / "tiny")
    assert main(["eval-filter", "--every", "47", "--checkpoint", str(ckpt)]) == 0
    out = capsys.readouterr().out
    assert "motion filter on the heldout split (3 clips)" in out
    videomae = out[out.index("videomae filter on the heldout split (3 clips)"):]
    # three clips, each counted once in the videomae confusion matrix
    rows = [line.split() for line in videomae.splitlines()
            if line.split()[:1] and line.split()[0] in sm.LABELS]
    assert sum(int(n) for row in rows[:3] for n in row[1:]) == 3

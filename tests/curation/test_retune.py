"""Re-tuning a filter on stored scores reproduces the run's verdicts and previews changes."""
import pytest

from curation import warehouse
from curation.config import ConfigError
from curation.retune import parse_settings, retune
from curation.route import route
from curation.stage import Resources
from curation.stages.motion import MotionStage


class StoredScoresMotion(MotionStage):
    """The real motion thresholds over fixed scores (no video decoding)."""

    def process_batch(self, rows):
        return [{"motion_residual": row["r"], "motion_raw": row["w"],
                 "motion_residual_mean": row["r"], "motion_moving_frac": 0.5} for row in rows]


def _dataset(tmp_path, config=None):
    import pyarrow as pa

    rows = pa.table({"input_key": ["a", "b", "c"], "video_id": ["a", "b", "c"], "source": ["x"] * 3,
                     "caption": ["A dog runs."] * 3, "clip_key": ["a:0-1000", "b:0-1000", "c:0-1000"],
                     "start_s": [0.0] * 3, "end_s": [1.0] * 3,
                     "r": [0.01, 0.08, 0.3], "w": [0.05, 0.05, 0.05]})
    from curation.execute import apply_stage

    stage = StoredScoresMotion(resources=Resources())
    work = apply_stage(stage, rows)
    warehouse.write_shard(tmp_path, 0, route(work, [stage], {}), {"config": config or {}})
    return tmp_path


def test_current_settings_reproduce_the_run(tmp_path):
    report = retune(_dataset(tmp_path), "motion", {})
    assert report.clips == 3 and not report.newly_rejected and not report.newly_passing
    assert report.reasons_now == {"still_image": 1}


def test_new_thresholds_preview_both_directions(tmp_path):
    root = _dataset(tmp_path)
    stricter = retune(root, "motion", parse_settings(["residual_min=0.1"]))
    assert stricter.newly_rejected == [("b:0-1000", "still_image")] and not stricter.newly_passing
    looser = retune(root, "motion", parse_settings(["residual_min=0.005"]))
    assert looser.newly_passing == ["a:0-1000"] and not looser.newly_rejected


def test_only_score_threshold_stages_and_known_settings(tmp_path):
    root = _dataset(tmp_path)
    with pytest.raises(ConfigError, match="cannot be re-tuned from clip_scores"):
        retune(root, "grounding", {})
    with pytest.raises(ConfigError, match="has no setting"):
        retune(root, "motion", {"residual_mn": 0.1})
    with pytest.raises(ConfigError, match="NAME=VALUE"):
        parse_settings(["residual_min"])


def test_the_runs_own_settings_are_the_base_and_overrides_go_on_top(tmp_path):
    run_config = {"profile": "offline", "stages": {"motion": {"residual_min": 0.1}}}
    root = _dataset(tmp_path, run_config)
    as_run = retune(root, "motion", {})  # the stored verdicts used 0.05: the run says 0.1
    assert as_run.settings["residual_min"] == 0.1
    assert as_run.newly_rejected == [("b:0-1000", "still_image")]
    on_top = retune(root, "motion", {"steady_min": 0.4})
    assert on_top.settings["residual_min"] == 0.1 and on_top.settings["steady_min"] == 0.4
    assert on_top.overrides == {"steady_min": 0.4}


def test_retunable_stages_are_those_whose_decision_needs_only_stored_scores():
    from curation.retune import retunable_stages

    assert set(retunable_stages()) == {"shots", "motion", "videomae"}

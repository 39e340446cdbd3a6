"""The stage contract: the base class owns the batch loop; stages score and decide."""
from __future__ import annotations

import re
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pyarrow as pa
import pytest

from curation.config import STAGE_CLASSES, ConfigError, RunConfig, stage_class
from curation.profiles import build_stages, check_columns
from curation.stage import Outcome, Stage

README = Path(__file__).parents[2] / "curation" / "stages" / "README.md"


def example_stage() -> type[Stage]:
    """The example stage of curation/stages/README.md, exactly as written there."""
    (code,) = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    module = types.ModuleType("readme_example")
    sys.modules[module.__name__] = module  # dataclasses resolve ClassVar through the module
    exec(compile(code, str(README), "exec"), module.__dict__)
    return module.CaptionLengthStage


def test_the_readme_example_stage_scores_decides_and_retunes():
    cls = example_stage()
    batch = pa.table({"clip_key": ["a", "b"], "caption": ["A dog runs on grass.", "Dog."]})
    out = cls()(batch).to_pylist()
    assert [r["caption_words"] for r in out] == [5, 1]
    assert [r["status"] for r in out] == ["ok", "rejected"]
    assert out[1]["reason"] == "short_caption" and "1 words < 3" in out[1]["detail"]
    assert cls(min_words=1).decide({"caption_words": 1}).reason is None  # re-tune on stored scores


def test_no_stage_overrides_call_and_every_stage_scores_per_batch():
    for name in STAGE_CLASSES:
        cls = stage_class(name)
        assert "__call__" not in vars(cls), name
        assert cls.process_batch is not Stage.process_batch, name


@dataclass
class Exploding(Stage):
    """Batched work that fails on one row: the base class pins the error to that row."""

    name: ClassVar[str] = "exploding"
    writes: ClassVar[tuple[pa.Field, ...]] = (pa.field("value", pa.float32()),)
    setups: int = 0

    def setup(self) -> None:
        self.setups += 1

    def process_batch(self, rows: list[dict]) -> list[dict]:
        if any(r["x"] == 2 for r in rows):
            raise ZeroDivisionError("bad clip")
        return [{"value": float(r["x"])} for r in rows]


def test_a_failing_row_is_an_error_row_with_file_and_line_the_others_pass():
    stage = Exploding()
    out = stage(pa.table({"x": [1, 2, 3]})).to_pylist()
    stage(pa.table({"x": [4]}))
    assert stage.setups == 1  # lazy setup, once
    assert [r["status"] for r in out] == ["ok", "rejected", "ok"]
    assert [r["value"] for r in out] == [1.0, None, 3.0]
    assert out[1]["reason"] == "exploding_error"
    assert re.fullmatch(r"ZeroDivisionError: bad clip \(test_stage_contract\.py:\d+\)", out[1]["detail"])


def test_a_stage_reading_an_unwritten_column_fails_at_plan_time_naming_both():
    with pytest.raises(ConfigError, match=r"stage 'grounding' reads column 'frames'.*'frames'"):
        build_stages(RunConfig(skip=["frames"]))
    cls = example_stage()
    with pytest.raises(ConfigError, match="'caption_length' reads column 'caption'.*'ingest'"):
        check_columns([cls()], inputs=("clip_key",))
    check_columns([cls()], inputs=("caption",))
    with pytest.raises(ConfigError, match="'exploding' reads column 'x'.*no stage writes it"):
        check_columns([type("Reader", (Exploding,), {"reads": ("x",)})()], inputs=())
    for profile in ("offline", "lite", "full"):
        for chosen in ("motion", "videomae", "both"):
            build_stages(RunConfig(profile=profile, undesirable_filter=chosen))  # all consistent


def test_outcome_results_and_splits_pass_through_decide_untouched():
    @dataclass
    class Splitter(Stage):
        name: ClassVar[str] = "splitter"
        writes: ClassVar[tuple[pa.Field, ...]] = (pa.field("part", pa.int32()),)

        def process_batch(self, rows):
            return [[Outcome({"part": i}) for i in range(r["n"])] if r["n"] else
                    Outcome.reject("empty", "nothing to split") for r in rows]

    out = Splitter()(pa.table({"n": [2, 0]})).to_pylist()
    assert [(r["part"], r["status"]) for r in out] == [(0, "ok"), (1, "ok"), (None, "rejected")]

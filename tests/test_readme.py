"""The README documents what the code does: every rejection reason and both set-up commands."""
import importlib
from pathlib import Path

import pytest

from curation.config import STAGE_CLASSES

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


@pytest.mark.parametrize("stage", list(STAGE_CLASSES))
def test_every_rejection_reason_is_in_the_readme(stage):
    reasons = importlib.import_module(f"curation.stages.{stage}").REASONS
    missing = [code for code in reasons if f"| `{stage}` | `{code}` |" not in README]
    assert not missing, f"README 'Rejection reasons' lacks {stage}: {missing}"


def test_every_runner_rejection_reason_is_in_the_readme():
    from curation.execute import RUNNER_REASONS

    missing = [code for code in RUNNER_REASONS if f"| (any stage) | `<stage>_{code}` |" not in README]
    assert not missing, f"README 'Rejection reasons' lacks runner reasons {missing}"


def test_readme_shows_the_two_commands():
    assert "make demo" in README and "make test" in README

"""`alchemist bench ...`: operator mistakes are one line naming the fix, exit code 2."""
import json

import pytest

from curation.cli import main
from evaluation.msrvtt import modes


@pytest.fixture
def bench(tmp_path):
    (tmp_path / "modes").mkdir()
    (tmp_path / "modes" / "subject.json").write_text(json.dumps(modes.ModeLists("subject", [], [], []).to_dict()))
    return tmp_path


@pytest.mark.parametrize("argv, message", [
    (["bench", "build", "--manifest", "m.csv", "--out", "{tmp}/b", "--keep", "{tmp}/nope.txt"], "export it from"),
    (["bench", "eval", "--benchmark", "{tmp}", "--videos", "{tmp}/none", "--mode", "subject", "--out", "{tmp}/e"],
     "is not a directory"),
    (["bench", "eval", "--benchmark", "{tmp}", "--videos", "{tmp}", "--mode", "faces", "--out", "{tmp}/e"],
     "unknown mode 'faces'"),
    (["bench", "eval", "--benchmark", "{tmp}", "--videos", "{tmp}", "--mode", "face", "--out", "{tmp}/e"],
     "run `alchemist bench build`"),
    (["bench", "eval", "--benchmark", "{tmp}", "--videos", "{tmp}", "--mode", "subject", "--out", "{tmp}/e",
      "--shard", "3/2"], "I must be in [0, N)"),
    (["bench", "generate", "--checkpoint", "{tmp}/none", "--benchmark", "{tmp}", "--mode", "subject",
      "--out", "{tmp}/g", "--size", "big"], "is not WIDTHxHEIGHT"),
    (["bench", "generate", "--checkpoint", "{tmp}/none", "--benchmark", "{tmp}", "--mode", "subject",
      "--out", "{tmp}/g"], "does not exist"),
    (["bench", "import", "--annotations", "{tmp}/none", "--videos", "{tmp}", "--out", "{tmp}/i"], "is not a directory"),
])
def test_operator_mistakes_exit_2_with_one_line(bench, capsys, argv, message):
    assert main([a.replace("{tmp}", str(bench)) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1

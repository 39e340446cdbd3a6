"""`make mutation`'s closing lines: the kill rate of the mutants mutmut checked, and the survivors."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def main() -> int:
    mutmut = str(Path(sys.executable).parent / "mutmut")
    subprocess.run([mutmut, "export-cicd-stats"], check=True, capture_output=True)
    stats = json.loads(Path("mutants/mutmut-cicd-stats.json").read_text())
    checked = stats["killed"] + stats["survived"] + stats["timeout"] + stats["suspicious"]
    caught = stats["killed"] + stats["timeout"]  # a mutant that hangs the tests is caught too
    print(f"mutation: {caught} of {checked} checked mutants killed ({caught / max(checked, 1):.0%}); "
          f"{stats['no_tests']} had no covering test")
    results = subprocess.run([mutmut, "results"], capture_output=True, text=True).stdout.splitlines()
    survivors = [line.strip() for line in results if line.strip().endswith(": survived")]
    print("\n".join(["surviving mutants (`mutmut show NAME` prints the diff):", *survivors]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`make bench`: run every benchmark module side by side in one process, write one table.

Ratios are only quoted between numbers measured in the same run: this machine is noisy.
"""
from __future__ import annotations

import argparse
import importlib
import platform
import time
import traceback
from pathlib import Path

MODULES = [
    "benchmark.curation_bench",
    "benchmark.cost_bench",
    "benchmark.grounding_bench",
    "benchmark.faces_bench",
    "benchmark.entities_bench",
    "benchmark.model_bench",
    "benchmark.training_bench",
    "benchmark.videomae_bench",
    "benchmark.personalization_bench",
    "benchmark.scale_bench",
    "benchmark.service_bench",
    "benchmark.motion_bench",
]
COLUMNS = ["benchmark", "metric", "value", "unit", "notes"]


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def to_markdown(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_fmt(r.get(c, "")) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="bench_results.md")
    parser.add_argument("--only", nargs="*", help="module names to run")
    args = parser.parse_args()
    rows, failed = [], []
    for name in MODULES:
        if args.only and name.split(".")[-1] not in args.only:
            continue
        start = time.monotonic()
        try:
            rows += importlib.import_module(name).run()
        except Exception:
            failed.append(name)
            traceback.print_exc()
        print(f"{name}: {time.monotonic() - start:.0f}s", flush=True)
    header = (f"# Alchemist benchmarks\n\n{time.strftime('%Y-%m-%d %H:%M')}, {platform.processor() or platform.machine()}, "
              f"CPU only. Compare numbers within this table only.\n\n")
    Path(args.out).write_text(header + to_markdown(rows) + "\n")
    print(to_markdown(rows))
    print(f"\nwritten to {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""`make bench-personalization`: build -> generate -> eval, offline, end to end.

A test of the chain, not of a model: the input is the small MSR-VTT-like set of
`sample_set.py`, the generator is a random tiny model bundle and the evaluator's CLIP,
GroundingDINO, SAM, DINO and RAFT are tiny random checkpoints of the real architectures, so
the scores it prints are meaningless. Faces use the shipped MTCNN + dlib models.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

CHAIN_MODES = ("subject", "face")  # the paper's Tables 1 and 2
TINY_CLIP = {"frames": 9, "width": 48, "height": 32, "steps": 2}  # smallest clip the tiny VAE takes


def run_chain(out: Path, batch_size: int = 2) -> dict[str, dict]:
    from model.model_registry import torch_threads
    from evaluation.msrvtt.builder import build
    from evaluation.msrvtt.evaluator import EvalSettings, evaluate
    from evaluation.msrvtt.generate import GenerateSettings, generate_mode
    from evaluation.msrvtt.sample_set import build_sample_set
    from evaluation.msrvtt.tiny import write_tiny_eval_models
    from model.checkpoint import make_tiny_bundle

    out = Path(out)
    with torch_threads(1):
        report = build(build_sample_set(out / "inputs"), out / "benchmark", profile="offline")
        print(f"built {report['samples']} samples; modes: {report['modes']}", flush=True)
        tiny = write_tiny_eval_models(out / "tiny_models")
        checkpoint = make_tiny_bundle(out / "tiny_bundle")
        settings = EvalSettings(clip=tiny["clip"], grounding_dino=tiny["grounding_dino"], sam=tiny["sam"],
                                dino=tiny["dino"], raft=tiny["raft"], raft_arch="small",
                                batch_size=batch_size, device="cpu")
        rows = {}
        for mode in CHAIN_MODES:
            videos = out / "generated" / mode
            generate_mode(checkpoint, out / "benchmark", mode, videos,
                          GenerateSettings(**TINY_CLIP, batch_size=batch_size))
            rows[mode] = evaluate(out / "benchmark", videos, mode, out / "eval" / mode, settings,
                                  name="tiny random bundle")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench_personalization_out")
    args = parser.parse_args()
    from evaluation.msrvtt.leaderboard import to_markdown

    rows = run_chain(Path(args.out))
    for row in rows.values():
        print(to_markdown(row))
    print(json.dumps({m: str(Path(args.out) / "eval" / m / "leaderboard.md") for m in rows}))
    print("A chain test: tiny random models, meaningless scores.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

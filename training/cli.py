"""argparse wiring for `alchemist train` and `alchemist encode` (registered by curation/cli.py)."""
from __future__ import annotations

import argparse
import json


def _resolve_config(args):
    from curation.errors import OperatorError
    from training.config import train_config

    overrides = {"steps": args.steps} if getattr(args, "steps", None) else {}
    try:
        return train_config(args.config, **overrides)
    except KeyError as err:
        raise OperatorError(str(err.args[0])) from None


def _missing(paths) -> None:
    from pathlib import Path

    from curation.errors import OperatorError

    for p in paths:
        if not (Path(p) / "_SUCCESS").exists():
            raise OperatorError(f"{p} is not a committed dataset (no _SUCCESS); run `alchemist curate --out {p}` first")


def add_train_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("train", help="train the personalization DiT on curated datasets")
    p.add_argument("--dataset", action="append", required=True, help="committed dataset directory (repeatable)")
    p.add_argument("--config", default="demo", help="named training config (training/config.py TRAIN_CONFIGS)")
    p.add_argument("--out", required=True, help="run directory: checkpoints, metrics.jsonl, loss_curve.png")
    p.add_argument("--steps", type=int, default=None, help="override the config's step count")
    p.add_argument("--workers", type=int, default=0, help="Ray Train workers; 0 = Ray Train's local mode")
    p.add_argument("--ray-address", default=None, help="Ray cluster to train on (default: a local Ray)")
    p.add_argument("--resume", action="store_true", help="continue from the run's latest checkpoint")

    def run(args):
        from training.trainer import run_training

        cfg = _resolve_config(args)
        _missing(args.dataset)
        summary = run_training(cfg, args.dataset, args.out, workers=args.workers,
                               ray_address=args.ray_address, resume=args.resume)
        print(json.dumps(summary, indent=2))
        return 0

    p.set_defaults(func=run)
    return p


def add_encode_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("encode", help="cache a dataset's latents and text offsets for training")
    p.add_argument("dataset", help="committed dataset directory")
    p.add_argument("--config", default="demo", help="named training config (encoders and buckets)")
    p.add_argument("--ray-address", default=None)

    def run(args):
        from training.cache import encode_dataset

        cfg = _resolve_config(args)
        _missing([args.dataset])
        print(json.dumps(encode_dataset(args.dataset, cfg, args.ray_address), indent=2))
        return 0

    p.set_defaults(func=run)
    return p

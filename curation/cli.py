"""`alchemist`: the command line. Subcommands import their heavy modules only when run."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from curation.errors import OperatorError


def _curate(args: argparse.Namespace) -> int:
    from curation.config import load_config
    from curation.inspect import summary
    from curation.runner import curate

    config = load_config(args.config, args.profile)
    out = args.out
    if args.new_version:
        from curation.planning import versioned_out
        from curation.profiles import build_stages

        out = versioned_out(args.manifest, out, config, build_stages(config))
    curate(args.manifest, out, config, ray_address=args.ray_address, use_ray=not args.no_ray,
           progress=not args.no_progress)
    print(summary(out))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from curation.demo import run_demo

    return run_demo(Path(args.out), use_airflow=args.airflow)


def _models_tiny(args: argparse.Namespace) -> int:
    from curation.tiny import write_all

    for name, path in write_all(Path(args.out), only=args.only).items():
        print(f"{name}\t{path}")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from curation.inspect import summary

    print(summary(args.dir, samples=args.samples))
    if args.html:
        from curation.contact_sheet import render_contact_sheet

        render_contact_sheet(args.dir, args.html, max_clips=args.max_clips)
        print(f"contact sheet: {args.html}")
    return 0


def _retune(args: argparse.Namespace) -> int:
    from curation.retune import parse_settings, retune

    print("\n".join(retune(args.dir, args.stage, parse_settings(args.set)).lines(args.samples)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="alchemist", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an operator error instead of one line")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("curate", help="run the curation pipeline on a manifest (no Airflow)")
    p.add_argument("--manifest", required=True, help="CSV/JSONL/Parquet, Panda-70M CSV or video2dataset folder")
    p.add_argument("--out", required=True, help="dataset directory to write")
    p.add_argument("--config", help="YAML run configuration")
    p.add_argument("--profile", choices=["offline", "lite", "full"])
    p.add_argument("--ray-address", help="Ray cluster address; default: a local Ray")
    p.add_argument("--no-ray", action="store_true", help="run stages in-process (debugging)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (shards, rows/s, ETA)")
    p.add_argument("--new-version", action="store_true",
                   help="if --out holds a dataset of another manifest, code or settings, write <out>-vN")
    p.set_defaults(func=_curate)

    p = sub.add_parser("demo", help="build the demo manifest and curate it")
    p.add_argument("--out", default="demo_out")
    p.add_argument("--airflow", action="store_true", help="run through the Airflow `curate` DAG")
    p.set_defaults(func=_demo)

    p = sub.add_parser("models", help="model utilities")
    msub = p.add_subparsers(dest="models_command", required=True)
    t = msub.add_parser("tiny", help="write tiny random checkpoints of every architecture we use")
    t.add_argument("--out", required=True)
    t.add_argument("--only", nargs="*", help="names to write (default: all)")
    t.set_defaults(func=_models_tiny)

    p = sub.add_parser("inspect", help="row counts, rejection reasons and sample rows of a dataset")
    p.add_argument("dir")
    p.add_argument("--samples", type=int, default=3)
    p.add_argument("--html", help="also write a contact sheet to this HTML file")
    p.add_argument("--max-clips", type=int, default=50)
    p.set_defaults(func=_inspect)

    p = sub.add_parser("retune", help="preview new filter thresholds on stored scores (no recompute)")
    p.add_argument("dir")
    p.add_argument("--stage", required=True, help="shots, motion or videomae")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", help="a setting to try")
    p.add_argument("--samples", type=int, default=5)
    p.set_defaults(func=_retune)

    _add_plugin_commands(sub)
    return parser


def _add_plugin_commands(sub) -> None:
    """Commands that live beside their code (model training, filter training, sampling).
    One import and one line per command, so parallel additions merge cleanly."""
    from curation.cost.cli import add_cost_parser
    from curation.entities.eval_cli import add_eval_entities_parser
    from curation.motion_eval import add_eval_filter_parser
    from curation.videomae.label_sample import add_label_sample_parser
    from curation.videomae.train import add_train_filter_parser
    from evaluation.msrvtt.cli import add_bench_parser
    from model.cli import add_sample_parser, add_train_vae_parser
    from training.cli import add_encode_parser, add_train_parser

    for add in (
        add_train_filter_parser,
        add_label_sample_parser,
        add_sample_parser,
        add_train_vae_parser,
        add_bench_parser,
        add_eval_entities_parser,
        add_cost_parser,
        add_train_parser,
        add_encode_parser,
        add_eval_filter_parser,
    ):
        add(sub)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except OperatorError as e:
        if args.debug:
            raise
        print(f"alchemist: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

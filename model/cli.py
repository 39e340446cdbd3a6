"""argparse wiring for `alchemist sample` and `alchemist train-vae`.

The project CLI (curation/cli.py) calls `add_sample_parser` and `add_train_vae_parser` on its
subparsers; `python -m model.cli ...` runs the same two commands on their own.
"""
from __future__ import annotations

import argparse
import sys


def add_sample_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("sample", help="generate a personalized video from a model bundle")
    p.add_argument("--checkpoint", required=True, help="model bundle directory written by save_bundle")
    p.add_argument("--prompt", required=True)
    p.add_argument("--ref", action="append", default=[], metavar="WORD=IMAGE",
                   help="reference image of an entity word of the prompt (repeatable)")
    p.add_argument("--background", action="append", default=[], metavar="WORD=IMAGE",
                   help="background image and its word in the prompt")
    p.add_argument("--frames", type=int, default=17, help="1 + k * temporal compression")
    p.add_argument("--size", default="512x288", help="WIDTHxHEIGHT")
    p.add_argument("--steps", type=int, default=128, help="Euler steps (paper: 128 eval, 256 visuals)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda:0")
    p.add_argument("--out", required=True, help="output .mp4; a .png strip and .json go beside it")

    def run(args):
        from model.sample_cli import run_sample

        return run_sample(args)

    p.set_defaults(func=run)
    return p


def add_train_vae_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("train-vae", help="train the bundled causal video autoencoder")
    p.add_argument("--videos", required=True, help="folder of videos (searched recursively)")
    p.add_argument("--out", required=True, help="autoencoder checkpoint to write (.pt)")
    p.add_argument("--preset", default="magvit-tiny", help="VAE_CONFIGS preset")
    p.add_argument("--frames", type=int, default=9)
    p.add_argument("--size", default="64x64", help="WIDTHxHEIGHT")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--kl-weight", type=float, default=1e-6)
    p.add_argument("--perceptual-encoder", default=None,
                   help="image encoder (hub id or dir) whose features give the perceptual loss")
    p.add_argument("--perceptual-kind", default="dinov2", choices=["dinov2", "clip", "mae"])
    p.add_argument("--perceptual-weight", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=50)

    def run(args):
        from model.train_vae import train

        return train(args)

    p.set_defaults(func=run)
    return p


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model.cli")
    sub = parser.add_subparsers(dest="command", required=True)
    add_sample_parser(sub)
    add_train_vae_parser(sub)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

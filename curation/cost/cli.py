"""`alchemist cost`: GPU-seconds per clip of a profile, per stage, and for a whole corpus."""
from __future__ import annotations

import argparse
import dataclasses

from curation.config import ConfigError, config_from_mapping, read_yaml
from curation.cost.estimate import Corpus, StageCost, estimate
from curation.cost.hardware import GPUS, Gpu
from curation.cost.levers import LEVER_SETS, apply_levers
from curation.cost.report import render
from curation.cost.table import UnitTable

PROFILES = ("baseline", "offline", "lite", "full")


def add_cost_parser(sub) -> None:
    p = sub.add_parser("cost", help="GPU-seconds per clip of a profile, per stage (counted FLOPs + roofline)")
    p.add_argument("--profile", choices=PROFILES, default="full")
    p.add_argument("--gpu", choices=sorted(GPUS), default="a100")
    p.add_argument("--peak-tflops", type=float, help="another GPU: dense bf16 peak, TFLOP/s")
    p.add_argument("--bandwidth-gbs", type=float, help="another GPU: memory bandwidth, GB/s")
    p.add_argument("--clips", type=int, default=1_000_000, help="corpus size for the totals")
    p.add_argument("--config", help="run config YAML; an optional `cost:` mapping sets corpus assumptions")
    p.add_argument("--levers", choices=sorted(LEVER_SETS), default="none", help="a named lever set")
    p.add_argument("--measure", action="store_true", help="regenerate measured.json (minutes)")
    p.set_defaults(func=_cost)


def choose_gpu(args) -> Gpu:
    if (args.peak_tflops is None) != (args.bandwidth_gbs is None):
        raise ConfigError("give both --peak-tflops and --bandwidth-gbs for a custom GPU, or neither")
    if args.peak_tflops is not None:
        return Gpu("custom", args.peak_tflops, args.bandwidth_gbs)
    return GPUS[args.gpu]


def load_corpus(raw: dict) -> Corpus:
    fields = {f.name for f in dataclasses.fields(Corpus)}
    unknown = set(raw) - fields
    if unknown:
        raise ConfigError(f"unknown cost setting(s) {sorted(unknown)}; cost settings are {sorted(fields)}")
    return Corpus(**raw)


def profile_costs(profile: str, levers: str, table: UnitTable, gpu: Gpu,
                  raw_config: dict | None = None) -> list[StageCost]:
    from curation.profiles import build_stages

    raw = dict(raw_config or {})
    corpus = load_corpus(raw.pop("cost", None) or {})
    if profile == "baseline":
        return estimate(None, corpus, gpu, table, table.cpu_seconds)
    config, corpus = apply_levers(config_from_mapping(raw, profile), corpus, levers)
    return estimate(build_stages(config), corpus, gpu, table, table.cpu_seconds)


def _cost(args) -> int:
    table, gpu = UnitTable(), choose_gpu(args)
    if args.measure:
        from curation.cost.generate import regenerate

        regenerate(table)
    raw = read_yaml(args.config) if args.config else {}
    costs = profile_costs(args.profile, args.levers, table, gpu, raw)
    title = f"profile {args.profile}" + (f", levers {args.levers}" if args.levers != "none" else "")
    print(render(costs, gpu, args.clips, title))
    if table.measured_now:
        print(f"measured now (not in measured.json): {', '.join(table.measured_now)}")
    return 0

"""`alchemist cost`: counted FLOPs against hand-computed figures, the roofline, the stored
unit table and the generated cost table."""
from __future__ import annotations

import pytest

from curation.cli import main
from curation.cost import architectures as arch
from curation.cost.counting import Count, measure
from curation.cost.estimate import Corpus, Work, price, StageCost
from curation.cost.generate import COSTS_MD, render_costs_md
from curation.cost.hardware import GPUS, Gpu
from curation.cost.table import UnitTable
from curation.cost.units import measure_unit


def within(measured: float, expected: float, tolerance: float = 0.05) -> bool:
    return abs(measured - expected) <= tolerance * expected


def test_llm_prefill_is_twice_parameters_times_tokens():
    """Mistral-7B at real size on the meta device: prefill ~ 2 x parameters x tokens."""
    count, params, how = measure_unit("mistral-7b.prefill:new=250,cached=0")
    assert how == "meta" and within(params, 7.24e9, 0.01)
    assert within(count.flops, 2 * params * 250)


def test_vit_forward_matches_the_transformer_formula():
    """VideoMAE-B, 16 frames at 224: N = 8 x 14 x 14 tokens through 12 layers of width 768."""
    n, d, layers = 8 * 14 * 14, 768, 12
    linear = 2 * n * 12 * d * d  # qkv + projection (4 d^2) and the 4x MLP (8 d^2)
    attention = 2 * 2 * n * n * d  # scores and weighted values
    patch_embed = 2 * n * (3 * 2 * 16 * 16) * d
    expected = layers * (linear + attention) + patch_embed
    count, _, _ = measure_unit("videomae-base.clip:frames=16")
    assert within(count.flops, expected, 0.01)


def test_a_small_configuration_is_counted_live():
    """A 2-layer Mistral measured now (not from the table): decode bytes include the weights."""
    from transformers import MistralConfig, MistralForCausalLM
    import torch

    config = MistralConfig(vocab_size=1000, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                           num_attention_heads=4, num_key_value_heads=2)
    count, params = measure(lambda: MistralForCausalLM(config),
                            lambda m: m(input_ids=torch.zeros(1, 32, dtype=torch.long)))
    embedding = 1000 * 64  # a lookup, no FLOPs
    assert within(count.flops, 2 * (params - embedding) * 32, 0.10)
    assert count.bytes > (params - embedding) * 2  # every weight is read at least once


def test_roofline_takes_the_slower_of_compute_and_memory():
    gpu = Gpu("x", peak_tflops=100.0, bandwidth_gbs=1000.0)
    assert gpu.seconds(Count(40e12, 1e9), utilisation=0.4) == pytest.approx(1.0)  # compute-bound
    assert gpu.seconds(Count(1e9, 2e12), utilisation=0.4) == pytest.approx(2.0)  # memory-bound


def test_stage_price_sums_units_times_counts():
    table = {"a": Count(1e12, 1e9), "b": Count(2e12, 1e9)}.__getitem__
    cost = price(StageCost("s", "m", "gpu", [Work("a", 3.0), Work("b", 0.5)]), table, GPUS["a100"])
    assert cost.count.flops == pytest.approx(4e12)
    assert cost.gpu_seconds == pytest.approx(4e12 / (312e12 * 0.4))


def test_whole_stage_counts_of_the_baseline(capsys):
    """The entities stage of the baseline: prefill + 40 decoded tokens, each ~2 x parameters."""
    from curation.cost.cli import profile_costs

    table = UnitTable()
    costs = {c.stage: c for c in profile_costs("baseline", "none", table, GPUS["a100"])}
    params = table.units["mistral-7b.prefill:new=250,cached=0"]["params"]
    corpus = Corpus()
    assert within(costs["entities"].count.flops, 2 * params * (250 + corpus.output_tokens))
    sam = measure_unit("sam-vit-huge.image")[0].flops  # a known single-image figure: ~5.9 TFLOP
    assert within(sam, 5.94e12)
    assert table.measured_now == []  # the stored table covers the baseline


def test_cost_command_prints_stages_and_total(capsys):
    from curation.cost.cli import profile_costs
    from curation.cost.report import total_gpu_seconds

    assert main(["cost", "--profile", "full", "--gpu", "a100", "--clips", "37800000"]) == 0
    out = capsys.readouterr().out
    total_line = next(line for line in out.splitlines() if line.startswith("total:"))
    seconds = float(total_line.split()[1])
    hours = float(total_line.split(", ")[1].split()[0].replace(",", ""))
    assert hours == pytest.approx(seconds * 37_800_000 / 3600, rel=0.01)
    costs = profile_costs("full", "none", UnitTable(), GPUS["a100"])
    assert seconds == pytest.approx(total_gpu_seconds(costs), abs=5e-4)
    assert seconds == pytest.approx(sum(c.gpu_seconds for c in costs), abs=5e-4)
    printed = {line.split()[0] for line in out.splitlines()[2:]}
    assert {c.stage for c in costs} <= printed
    dominant = max(costs, key=lambda c: c.gpu_seconds)
    assert f"dominant stage: {dominant.stage}" in out


def test_levers_make_the_full_profile_cheaper(capsys):
    from curation.cost.cli import profile_costs
    from curation.cost.report import total_gpu_seconds

    table, gpu = UnitTable(), GPUS["a100"]
    totals = {lev: total_gpu_seconds(profile_costs("full", lev, table, gpu)) for lev in ("none", "cheap", "fast")}
    assert totals["cheap"] < totals["none"] and totals["fast"] < totals["cheap"]


def test_custom_gpu_needs_both_figures(capsys):
    assert main(["cost", "--peak-tflops", "100"]) == 2
    assert "both --peak-tflops and --bandwidth-gbs" in capsys.readouterr().err


def test_unknown_cost_setting_is_one_line(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("cost: {clip_secs: 3}\n")
    assert main(["cost", "--config", str(cfg)]) == 2
    assert "unknown cost setting(s) ['clip_secs']" in capsys.readouterr().err


def test_costs_md_is_what_the_generator_writes():
    """COSTS.md is generated from measured.json; regenerate with `alchemist cost --measure`."""
    assert COSTS_MD.read_text() == render_costs_md(UnitTable()), (
        "curation/cost/COSTS.md is stale (a profile, lever or the entity prompt changed): "
        "regenerate it with `alchemist cost --measure` and copy its table into the README")


def test_readme_cost_table_is_the_generated_one():
    from pathlib import Path

    from curation.cost.generate import profile_table

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    block = readme.split("<!-- cost-table -->\n")[1].split("\n<!-- /cost-table -->")[0]
    assert block == profile_table(UnitTable()), "README cost table differs from COSTS.md's: copy it over"

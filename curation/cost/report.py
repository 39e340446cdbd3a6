"""`alchemist cost` output: the per-stage table, the totals, the dominant stage."""
from __future__ import annotations

from curation.cost.estimate import StageCost
from curation.cost.hardware import UTILISATION, Gpu


def total_gpu_seconds(costs: list[StageCost]) -> float:
    return sum(c.gpu_seconds for c in costs if c.work)


def total_cpu_seconds(costs: list[StageCost]) -> float:
    return sum(c.cpu_seconds or 0.0 for c in costs)


def render(costs: list[StageCost], gpu: Gpu, clips: int, title: str) -> str:
    gpu_s, cpu_s = total_gpu_seconds(costs), total_cpu_seconds(costs)
    lines = [title, f"{'stage':<11} {'model':<44} {'where':<5} {'TFLOP/clip':>10} {'GB/clip':>9} "
                    f"{'GPU-s/clip':>10} {'share':>6} {'CPU-s/clip':>10}"]
    for c in costs:
        share = f"{c.gpu_seconds / gpu_s:6.1%}" if gpu_s and c.work else ""
        cpu = f"{c.cpu_seconds:10.3f}" if c.cpu_seconds is not None else ""
        lines.append(f"{c.stage:<11} {c.model[:44]:<44} {c.placement:<5} {c.count.flops / 1e12:10.3f} "
                     f"{c.count.bytes / 1e9:9.2f} {c.gpu_seconds:10.4f} {share:>6} {cpu:>10}")
        lines += [f"    {w.per_clip:g} x {w.unit}" + (f"  ({w.note})" if w.note else "") for w in c.work]
    dominant = max(costs, key=lambda c: c.gpu_seconds)
    lines += [
        f"total: {gpu_s:.3f} GPU-s/clip, {gpu_s * clips / 3600:,.0f} GPU-hours "
        f"({clips:,} clips on {gpu.name} at {UTILISATION:.0%} of {gpu.peak_tflops:g} TFLOP/s, "
        f"{gpu.bandwidth_gbs:g} GB/s)",
        f"dominant stage: {dominant.stage} ({dominant.gpu_seconds / gpu_s:.0%} of GPU time)" if gpu_s else
        "dominant stage: none (no GPU work)",
        f"CPU stages: {cpu_s:.3f} CPU-s/clip measured on this machine, "
        f"{cpu_s * clips / 3600:,.0f} CPU-core-hours",
    ]
    return "\n".join(lines)

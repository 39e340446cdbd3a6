"""Training throughput on a generated sprite dataset with the `cpu-stage3` config:

  data loader     samples/s of `Run.next_samples` (read Parquet, decode the span at 24 fps,
                  A.3 draws, Table 4 augmentations): what feeds the step
  train step      samples/s of `Run.step` on the same samples (frozen encoders, DiT forward
                  with self-conditioning, backward, AdamW)
  training        samples/s of both in sequence
The goal is a loader at least 5x faster than the step, so that one loader worker per
training worker keeps it fed; ratios are measured side by side in this run. Beside the
wall-clock ratio, the ratio of the process CPU time each part used: on a shared machine the
wall clock also counts time spent waiting for a core, the CPU time does not.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

from model.model_registry import torch_threads

STEPS = 30  # 60 samples: almost 4 epochs of the 16 clips, a shard join every 4th step
THREADS = 1


def _row(metric: str, value: float, unit: str, notes: str) -> dict:
    return {"benchmark": "training", "metric": metric, "value": value, "unit": unit, "notes": notes}


def run() -> list[dict]:
    from training.config import train_config
    from training.synthetic import SpriteClip, write_sprite_dataset
    from training.trainer import Run

    palette = ((220, 40, 40), (40, 200, 60), (40, 80, 220), (230, 210, 40))
    clips = [SpriteClip(w, c, d) for w in ("square", "bar") for c in palette for d in (1, -1)]
    with tempfile.TemporaryDirectory() as tmp, torch_threads(THREADS):
        dataset = write_sprite_dataset(Path(tmp) / "dataset", clips, shard_size=8)
        run = Run(train_config("cpu-stage3", steps=STEPS + 1), [dataset], Path(tmp) / "run")
        bucket, samples = run.next_samples(0)
        run.step(0, bucket.batch, samples)  # warm-up: first-call allocations
        load = step = load_cpu = step_cpu = 0.0
        seen = 0
        for i in range(1, STEPS + 1):
            t0, c0 = time.perf_counter(), time.process_time()
            bucket, samples = run.next_samples(i)
            t1, c1 = time.perf_counter(), time.process_time()
            run.step(i, bucket.batch, samples)
            load, step, seen = load + t1 - t0, step + time.perf_counter() - t1, seen + len(samples)
            load_cpu, step_cpu = load_cpu + c1 - c0, step_cpu + time.process_time() - c1
    note = f"cpu-stage3 (dit-tiny, tiny encoders, 5x32x32 clips), {seen} samples, {THREADS} torch thread"
    return [
        _row("data loader", seen / load, "samples/s", note),
        _row("train step", seen / step, "samples/s", note),
        _row("loader / step", step / load, "x", "goal >= 5x; same run"),
        _row("loader / step (CPU time)", step_cpu / load_cpu, "x", "process CPU seconds of each part; same run"),
        _row("training", seen / (load + step), "samples/s", "loader and step in sequence, one process"),
    ]

"""Training throughput on a generated sprite dataset with the `cpu-stage3` config:

  data loader     samples/s of `Run.next_samples` (read Parquet, A.3 draws, Table 4
                  augmentations, and either decoding the span at 24 fps or reading the latent
                  cache): what feeds the step
  train step      samples/s of `Run.step` on the same samples (frozen encoders, DiT forward
                  with self-conditioning, backward, AdamW)
  training        samples/s of both in sequence
Three settings, each its own `Run` on its own dataset: clips encoded on the fly, one clip per
source video (every sample opens its video); on the fly, 4 clips per source video, a
source's clips in one shard (as curation writes them: a manifest row's shots); and the
latent cache (`alchemist encode`, the mode a paper-scale run uses: no decoding, no
autoencoder in the step). The goal is a loader at least 5x faster than the step, so that
one loader worker per training worker keeps it fed; ratios are measured side by side in one
run. Beside the wall-clock ratio, the ratio of the process CPU time each part used: on a
shared machine the wall clock also counts time spent waiting for a core, the CPU time does not.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

from model.model_registry import torch_threads

STEPS = 30  # 60 samples: almost 4 epochs of the 16 clips, a shard join every 4th step
THREADS = 1
SHARD = 8  # clips per shard
PALETTE = ((220, 40, 40), (40, 200, 60), (40, 80, 220), (230, 210, 40))


def _row(metric: str, value: float, unit: str, notes: str) -> dict:
    return {"benchmark": "training", "metric": metric, "value": value, "unit": unit, "notes": notes}


def measure(run) -> dict:
    """Loader and step alternately, as `Run.fit` calls them, after one warm-up step."""
    bucket, samples = run.next_samples(0)
    run.step(0, bucket.batch, samples)  # warm-up: first-call allocations
    t = {"load": 0.0, "step": 0.0, "load_cpu": 0.0, "step_cpu": 0.0, "seen": 0}
    for i in range(1, STEPS + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        bucket, samples = run.next_samples(i)
        t1, c1 = time.perf_counter(), time.process_time()
        run.step(i, bucket.batch, samples)
        t["load"], t["step"] = t["load"] + t1 - t0, t["step"] + time.perf_counter() - t1
        t["load_cpu"], t["step_cpu"] = t["load_cpu"] + c1 - c0, t["step_cpu"] + time.process_time() - c1
        t["seen"] += len(samples)
    return t


def _rows(setting: str, t: dict) -> list[dict]:
    note = f"{setting}; cpu-stage3 (dit-tiny, tiny encoders, 5x32x32 clips), {t['seen']} samples, {THREADS} torch thread"
    return [
        _row(f"data loader ({setting})", t["seen"] / t["load"], "samples/s", note),
        _row(f"train step ({setting})", t["seen"] / t["step"], "samples/s", note),
        _row(f"loader / step ({setting})", t["step"] / t["load"], "x", "goal >= 5x; same run"),
        _row(f"loader / step, CPU time ({setting})", t["step_cpu"] / t["load_cpu"], "x",
             "process CPU seconds of each part; same run"),
        _row(f"training ({setting})", t["seen"] / (t["load"] + t["step"]), "samples/s",
             "loader and step in sequence, one process"),
    ]


def _encode(dataset: Path, cfg, run_dir: Path) -> None:
    """The latent cache through `alchemist encode`'s code (Ray Data), then Ray stopped so that
    its processes do not share the cores with the timed loop."""
    import ray

    from training.cache import encode_dataset
    from training.setup import encoder_configs

    encoder_configs(cfg, run_dir)  # the run's tiny encoders: the cache and the trainer share them
    started = not ray.is_initialized()
    encode_dataset(dataset, cfg)
    if started:
        ray.shutdown()


def run() -> list[dict]:
    from training.config import train_config
    from training.synthetic import SpriteClip, write_sprite_dataset
    from training.trainer import Run

    clips = [SpriteClip(w, c, d) for w in ("square", "bar") for c in PALETTE for d in (1, -1)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp, torch_threads(THREADS):
        tmp = Path(tmp)
        for setting, per_source, cache in (("on the fly, 1 clip per source", 1, False),
                                           ("on the fly, 4 clips per source", 4, False),
                                           ("latent cache", 1, True)):
            root = tmp / f"{per_source}-{cache}"
            dataset = write_sprite_dataset(root / "dataset", clips, shard_size=SHARD, clips_per_source=per_source)
            cfg = train_config("cpu-stage3", steps=STEPS + 1, use_cache=cache)
            if cache:
                _encode(dataset, cfg, root / "run")
            rows += _rows(setting, measure(Run(cfg, [dataset], root / "run")))
    return rows

"""`alchemist train`: the personalization DiT on curated datasets (paper 3.3, B.2, A.3).

Read as a linear story: `run_training` starts Ray Train's `TorchTrainer` (local mode with
0 workers, DDP over `workers` Ray actors otherwise, `ray_address` for a cluster);
every worker runs `train_loop`, which sets up a `Run` and calls `fit`. Every random draw is
keyed by (seed, step, global sample index), and sample j of a global batch goes to worker
j mod world, so the parameters after a step do not depend on the number of workers.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from training import metrics
from training.config import TrainConfig


DROPOUT_STREAM = 1 << 40  # offset of the per-worker network-dropout keys past any sample index


def sample_seed(seed: int, step: int, index: int) -> int:
    return int(np.random.SeedSequence([seed, step, index]).generate_state(1)[0])


class Run:
    """Everything one worker holds during training."""

    def __init__(self, cfg: TrainConfig, datasets: list[str], run_dir: Path, rank: int = 0, world: int = 1):
        from model.config import FlowConfig, SamplerConfig
        from model.encoders import TextEncoder, TextEncoderConfig
        from model.rectified_flow import RectifiedFlow
        from training import setup
        from training.augment import AugmentConfig
        from training.buckets import buckets
        from training.cache import LatentCache
        from training.reader import CuratedReader, Position, SkipCounter
        from training.samples import SampleBuilder

        self.cfg, self.datasets, self.run_dir = cfg, [Path(d) for d in datasets], Path(run_dir)
        self.rank, self.world = rank, world
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.encoders = setup.encoder_configs(cfg, self.run_dir)
        self.text = TextEncoder(TextEncoderConfig(**self.encoders["text"]))
        self.image = setup.build_image_encoder(self.encoders)
        self.vae = setup.build_autoencoder(cfg)
        self.dit = setup.build_dit(cfg, self.vae, self.text.dim, self.image.dim)
        self.trainable = setup.set_trainable(self.dit, cfg.trains)
        self.optimizer = setup.build_optimizer(self.dit, cfg)
        self.schedule = setup.build_schedule(self.optimizer, cfg)
        if cfg.activation_checkpointing:
            setup.enable_activation_checkpointing(self.dit)
        self.flow = RectifiedFlow(FlowConfig(**cfg.flow))
        self.sampler_cfg = SamplerConfig()
        self.buckets = buckets(cfg.buckets)
        self.builder = SampleBuilder(self.text.tokenizer, cfg.text_max_length,
                                     cfg.conditioning if cfg.uses_references else None,
                                     AugmentConfig() if cfg.augment else None)
        self.reader = CuratedReader(self.datasets, cfg.seed, on_join=self.builder.prepare_shard)
        self.cache = LatentCache.open(self.datasets, cfg) if cfg.use_cache else None
        self.cache_info = self.cache.info if self.cache else None
        self.position, self.stream_index, self.skips = Position(), 0, SkipCounter()
        self.ema = {k: v.detach().clone() for k, v in self.dit.state_dict().items()} if cfg.ema_decay else None
        self.last_metrics: dict = {}
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model = self.dit

    # -- data ----------------------------------------------------------------------------

    def next_samples(self, step: int):
        """The global batch of `step`: (bucket, this worker's samples). Every worker walks the
        same record stream (cheap: Parquet rows); only its own samples are decoded."""
        from training.buckets import draw_bucket
        from training.conditioning import sample_rng
        from training.samples import Skip

        bucket = draw_bucket(self.buckets, self.cfg.seed, step)
        stream = self.reader.records(self.position)
        mine, taken = [], 0
        while taken < bucket.batch:
            record, self.position = next(stream)
            index, self.stream_index = self.stream_index, self.stream_index + 1
            own = taken % self.world == self.rank
            try:
                sample = self.builder.build(record, bucket, index, sample_rng(self.cfg.seed, step, index),
                                            materialize=own, cache=self.cache)
            except Skip as skip:
                self.skips.add(skip.reason, record.clip_key)
                continue
            taken += 1
            if own:
                mine.append(sample)
        return bucket, mine

    def batch(self, samples):
        """Latents (B, C, f, h, w) and Conditioning of this worker's samples."""
        from training.samples import conditioning

        with torch.no_grad():
            if samples[0].latent is not None:
                x = torch.stack([s.latent for s in samples]).to(self.device)
            else:
                x = self.vae.encode(torch.stack([s.video for s in samples]).to(self.device))
            text = self.text([s.caption for s in samples])
        return x, conditioning(samples, text, self.image, self.dit.cfg, self.device)

    # -- one step ------------------------------------------------------------------------

    def step(self, step: int, global_batch: int, samples) -> dict:
        torch.manual_seed(sample_seed(self.cfg.seed, step, DROPOUT_STREAM + self.rank))  # network dropout
        x, cond = self.batch(samples)
        seeds = [sample_seed(self.cfg.seed, step, s.index) for s in samples]
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cfg.bf16):
            out = self.flow.training_losses(self.model, x, cond, seeds=seeds)
        # Sum over this worker's samples / global batch; DDP averages over workers: x world.
        loss = out["mse"].sum() * self.world / global_batch
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.requires_grad], self.cfg.grad_clip)
        self.optimizer.step()
        self.schedule.step()
        self.update_ema()
        return {"mse": out["mse"].detach(), "t": out["t"].detach()}

    def update_ema(self) -> None:
        if self.ema is None:
            return
        with torch.no_grad():
            for k, v in self.dit.state_dict().items():
                self.ema[k].lerp_(v.to(self.ema[k].dtype), 1 - self.cfg.ema_decay) if v.is_floating_point() else None

    def global_mean(self, mse: torch.Tensor, global_batch: int) -> float:
        total = mse.sum().reshape(1)
        if self.world > 1:
            torch.distributed.all_reduce(total)
        return float(total) / global_batch

    # -- the loop ------------------------------------------------------------------------

    def fit(self, start_step: int = 0) -> dict:
        from tqdm import tqdm

        from training.checkpoints import save_checkpoint

        log = self.run_dir / "metrics.jsonl"
        bar = tqdm(range(start_step, self.cfg.steps), disable=self.rank != 0, desc="train", unit="step")
        tick, seen = time.perf_counter(), 0
        for step in bar:
            bucket, samples = self.next_samples(step)
            out = self.step(step, bucket.batch, samples)
            seen += bucket.batch
            loss = self.global_mean(out["mse"], bucket.batch)
            if self.rank == 0 and ((step + 1) % self.cfg.log_every == 0 or step + 1 == self.cfg.steps):
                elapsed = time.perf_counter() - tick
                self.last_metrics = {"step": step + 1, "loss": loss, "lr": self.schedule.get_last_lr()[0],
                                     "samples_per_s": seen / elapsed, "bucket": list(bucket.shape),
                                     "loss_by_t": metrics.loss_by_t(out["mse"], out["t"]),
                                     "skips": self.skips.to_dict()}
                metrics.append(log, self.last_metrics)
                bar.set_postfix(loss=f"{loss:.4f}")
                tick, seen = time.perf_counter(), 0
            done = step + 1 == self.cfg.steps
            if self.rank == 0 and ((step + 1) % self.cfg.checkpoint_every == 0 or done):
                save_checkpoint(self, step + 1)
        return self.finish()

    def finish(self) -> dict:
        from training.checkpoints import latest_checkpoint

        if self.rank != 0:
            return {}
        png = metrics.plot_loss(self.run_dir / "metrics.jsonl", self.run_dir / "loss_curve.png")
        summary = {"checkpoint": str(latest_checkpoint(self.run_dir)), "loss_curve": str(png),
                   "metrics_log": str(self.run_dir / "metrics.jsonl"), "final": self.last_metrics,
                   "skips": self.skips.to_dict(), "config": self.cfg.name, "steps": self.cfg.steps}
        (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        return summary


def train_loop(loop_config: dict) -> None:
    """The per-worker function Ray Train runs (TorchTrainer's train_loop_per_worker)."""
    import ray.train
    import ray.train.torch

    from training.checkpoints import latest_checkpoint, restore

    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    run = Run(TrainConfig.from_dict(loop_config["config"]), loop_config["datasets"], Path(loop_config["run_dir"]),
              rank, world)
    if world > 1:
        from training import setup

        # DDP: a batch without references leaves the reference path unused; FSDP: frozen and
        # trained parameters share flat parameters only with use_orig_params.
        kwargs = {"find_unused_parameters": True} if run.cfg.parallel == "ddp" else {"use_orig_params": True}
        run.model = ray.train.torch.prepare_model(run.dit, parallel_strategy=run.cfg.parallel,
                                                  parallel_strategy_kwargs=kwargs)
        run.model.cfg = run.dit.cfg
        if run.cfg.parallel == "fsdp":  # FSDP flattens the parameters: the optimizer comes after
            run.optimizer = setup.build_optimizer(run.model, run.cfg)
            run.schedule = setup.build_schedule(run.optimizer, run.cfg)
    start = 0
    if loop_config.get("resume") and latest_checkpoint(run.run_dir) is not None:
        start = restore(run, latest_checkpoint(run.run_dir))
    run.fit(start)


def run_training(cfg: TrainConfig, datasets: list[str], run_dir, workers: int = 0,
                 ray_address: str | None = None, resume: bool = False, use_gpu: bool = False) -> dict:
    """Train with Ray Train's TorchTrainer; returns the run summary (checkpoint, loss curve, metrics)."""
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    from training.setup import encoder_configs

    encoder_configs(cfg, run_dir)  # tiny encoders are written once, here, before any worker reads them
    if workers:
        from curation.runner import ensure_ray

        ensure_ray(ray_address)
    loop_config = {"config": cfg.to_dict(), "datasets": [str(Path(d).resolve()) for d in datasets],
                   "run_dir": str(run_dir), "resume": resume}
    trainer = TorchTrainer(train_loop, train_loop_config=loop_config,
                           scaling_config=ScalingConfig(num_workers=workers, use_gpu=use_gpu),
                           run_config=RunConfig(name="train", storage_path=str(run_dir / "ray")))
    trainer.fit()
    return json.loads((run_dir / "summary.json").read_text())

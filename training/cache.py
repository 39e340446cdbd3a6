"""Latent cache (`alchemist encode DATASET`): the frozen autoencoder and text encoder run once
per clip and bucket shape; the trainer reads latents instead of decoding and encoding clips.

Written beside the dataset, committed like curation shards (temporary name, rename, then
`_SUCCESS` with the encoder ids):

    <dataset>/_latents/<config name>/part-00000.parquet   one per dataset shard
    <dataset>/_latents/<config name>/_SUCCESS             encoders, buckets, counts

A clip is encoded from the start of its span (the trainer's on-the-fly crop is the same),
so the loss from the cache equals the loss from on-the-fly encoding. Reference images stay
raw: they are augmented anew at every step. The caption's token offsets are stored (binding
maps words to token positions through them); the text encoder's outputs are not cached yet:
the trainer encodes captions per step. The trainer reads one part at a time, the part of the
dataset shard its reader is in (`LatentCache`).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from training.config import TrainConfig

CACHE_SCHEMA = pa.schema([
    pa.field("clip_key", pa.string(), nullable=False),
    pa.field("bucket", pa.string(), nullable=False),  # "FxHxW"
    pa.field("status", pa.string(), nullable=False),  # "ok" or the skip reason
    pa.field("latent", pa.binary()),  # float32, C-order
    pa.field("latent_shape", pa.list_(pa.int32())),
    pa.field("text_offsets", pa.string()),  # JSON [[start, end], ...] per token
], metadata={"schema_version": "1"})


def cache_dir(dataset: Path, cfg: TrainConfig) -> Path:
    return Path(dataset) / "_latents" / cfg.name


def encoder_ids(cfg: TrainConfig) -> dict:
    """What must match between the cache and the trainer (random presets are keyed by seed)."""
    return {"vae": cfg.vae, "vae_seed": cfg.seed, "text_encoder": cfg.text_encoder,
            "text_max_length": cfg.text_max_length, "buckets": cfg.buckets}


def bucket_name(shape) -> str:
    return "x".join(map(str, shape))


@dataclass
class EncodeStage:
    """Ray Data stage: clip rows -> latent rows, one per bucket shape (frozen encoders)."""

    config: dict
    run_dir: str
    name: str = "encode"

    def setup(self) -> None:
        from model.encoders import TextEncoder, TextEncoderConfig
        from training import setup
        from training.buckets import buckets

        self.cfg = TrainConfig.from_dict(self.config)
        encoders = setup.encoder_configs(self.cfg, Path(self.run_dir))
        self.text = TextEncoder(TextEncoderConfig(**encoders["text"]))
        self.vae = setup.build_autoencoder(self.cfg)
        self.shapes = sorted({b.shape for b in buckets(self.cfg.buckets)})

    def encode_one(self, row: dict, shape) -> dict:
        from training.buckets import Bucket
        from training.reader import ClipRecord
        from training.samples import Skip, clip_video

        out = {"clip_key": row["clip_key"], "bucket": bucket_name(shape), "latent": None, "latent_shape": None}
        record = ClipRecord("", row["clip_key"], row["source"], row["caption"], row["start_s"], row["end_s"],
                            [], {}, {}, None)
        try:
            video = clip_video(record, Bucket(*shape, batch=1, weight=1.0))
        except Skip as skip:
            return out | {"status": skip.reason, "text_offsets": None}
        with torch.no_grad():
            latent = self.vae.encode(video[None])[0].float().numpy()
        offsets = self.text([row["caption"]]).offsets[0]
        return out | {"status": "ok", "latent": latent.tobytes(), "latent_shape": list(latent.shape),
                      "text_offsets": json.dumps(offsets)}

    def __call__(self, batch: dict) -> dict:
        if not hasattr(self, "vae"):
            self.setup()
        rows = [dict(zip(batch, values)) for values in zip(*batch.values())]
        out = [self.encode_one(r, shape) for r in rows for shape in self.shapes]
        return {name: [o[name] for o in out] for name in CACHE_SCHEMA.names}


def _write_atomic(table: pa.Table, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


def encode_dataset(dataset, cfg: TrainConfig, ray_address: str | None = None) -> dict:
    """Encode every committed shard of `dataset` once (Ray Data); returns the `_SUCCESS` summary."""
    import ray

    from curation.runner import ensure_ray
    from curation.warehouse import committed_shards, part_name, read_table

    dataset = Path(dataset).resolve()
    out = cache_dir(dataset, cfg)
    out.mkdir(parents=True, exist_ok=True)
    ensure_ray(ray_address)
    clips = read_table(dataset, "clips").select(["clip_key", "source", "caption", "start_s", "end_s"]).to_pylist()
    counts: dict[str, int] = {}
    for shard in committed_shards(dataset):
        keys = set(read_table_shard(dataset, shard))
        rows = [c for c in clips if c["clip_key"] in keys]
        path = out / f"{part_name(shard)}.parquet"
        if not path.exists():
            ds = ray.data.from_items(rows) if rows else None
            result = ds.map_batches(EncodeStage, fn_constructor_kwargs={"config": cfg.to_dict(), "run_dir": str(out)},
                                    batch_size=4, compute=ray.data.ActorPoolStrategy(size=1),
                                    batch_format="numpy").take_all() if ds else []
            _write_atomic(pa.Table.from_pylist([_plain(r) for r in result], schema=CACHE_SCHEMA), path)
        for status in pq.read_table(path, columns=["status"]).column("status").to_pylist():
            counts[status] = counts.get(status, 0) + 1
    success = {"encoders": encoder_ids(cfg), "shards": committed_shards(dataset), "counts": counts,
               "config": cfg.name, "location": str(out)}
    (out / "_SUCCESS.tmp").write_text(json.dumps(success, indent=2))
    os.replace(out / "_SUCCESS.tmp", out / "_SUCCESS")
    return success


def read_table_shard(dataset: Path, shard: int) -> list[str]:
    from curation.warehouse import part_name

    return pq.read_table(dataset / "clips" / f"{part_name(shard)}.parquet", columns=["clip_key"]).column(
        "clip_key").to_pylist()


def _plain(row: dict) -> dict:
    """numpy values from Ray Data -> plain Python for pyarrow."""
    out = {}
    for k, v in row.items():
        if isinstance(v, np.ndarray):
            v = v.tolist()
        elif isinstance(v, np.generic):
            v = v.item()
        out[k] = v
    return out


class LatentCache:
    """Cached latents of one or several datasets, for one training config, streamed like the
    reader: one cache part (one dataset shard's latents) in memory, the part of the shard the
    reader is in, read when the reader's records move to the next shard."""

    def __init__(self, dirs: dict[str, Path], info: dict):
        self.dirs, self.info = dirs, info  # dataset root -> its cache directory
        self._part: tuple[tuple[str, int], dict] | None = None  # ((root, shard), (clip_key, bucket) -> row)

    @classmethod
    def open(cls, datasets, cfg: TrainConfig) -> "LatentCache":
        from curation.errors import OperatorError

        dirs, infos = {}, []
        for dataset in map(Path, datasets):
            d = cache_dir(dataset, cfg)
            if not (d / "_SUCCESS").exists():
                raise OperatorError(f"no latent cache at {d}; run `alchemist encode {dataset} --config {cfg.name}`")
            info = json.loads((d / "_SUCCESS").read_text())
            if info["encoders"] != encoder_ids(cfg):
                raise OperatorError(f"the latent cache at {d} was made with {info['encoders']}, not "
                                    f"{encoder_ids(cfg)}; re-run `alchemist encode {dataset} --config {cfg.name}`")
            infos.append(info)
            dirs[str(dataset)] = d
        return cls(dirs, {"caches": [i["location"] for i in infos], "encoders": encoder_ids(cfg)})

    def part(self, root: str, shard: int) -> dict:
        """The cached rows of one dataset shard, by (clip key, bucket); the previous part is dropped."""
        from curation.warehouse import part_name

        if self._part is None or self._part[0] != (root, shard):
            path = self.dirs[root] / f"{part_name(shard)}.parquet" if root in self.dirs else None
            rows = pq.ParquetFile(path).read(use_threads=False).to_pylist() if path and path.exists() else []
            self._part = ((root, shard), {(r["clip_key"], r["bucket"]): r for r in rows})
        return self._part[1]

    def latent(self, record, bucket) -> torch.Tensor:
        from training.samples import Skip

        row = self.part(record.root, record.shard).get((record.clip_key, bucket_name(bucket.shape)))
        if row is None:
            raise Skip("not_in_cache", f"{record.clip_key} has no cached latent for {bucket_name(bucket.shape)}")
        if row["status"] != "ok":
            raise Skip(row["status"])
        array = np.frombuffer(row["latent"], dtype=np.float32).reshape(row["latent_shape"])
        return torch.from_numpy(array.copy())

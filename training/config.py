"""Training configs: the three stages of paper B.2 as named presets, plus CPU presets.

A `TrainConfig` is frozen; `train_config(name, **overrides)` resolves a preset, and the
resolved config is saved inside every checkpoint (model/checkpoint.py `train`).
Stages (paper B.2): I trains the backbone without the personalization path (text only);
II trains only the personalization path with the backbone frozen; III trains both.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace

STAGES = {
    1: {"trains": "backbone", "references": False},  # paper B.2: "without cross-attention for personalization"
    2: {"trains": "reference", "references": True},  # paper B.2: backbone and image encoder fixed
    3: {"trains": "all", "references": True},  # paper B.2: both finetuned
}
LR_SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class ConditioningConfig:
    """Paper A.3: which entities and reference images condition one training sample."""

    min_entities: int = 1  # paper A.3 "from 1 to 3"
    max_entities: int = 3  # paper A.3; Table 5's "6 (stage 2 only)" is the stage-II preset's value
    max_images: int = 3  # paper A.3 "1 to 3" reference images per entity
    background_prob: float = 0.5  # paper A.3 "with a probability of 50%"
    face_rate: float = 0.5  # ours: share of a human subject's images drawn from its face crops
    objects: bool = True  # ours: objects are conditional entities like subjects (A.3 names "subjects")
    all_entities: bool = False  # the binding toy: every entity once, in random order (not A.3)


@dataclass(frozen=True)
class TrainConfig:
    name: str = "stage3"
    stage: int = 3  # paper B.2
    dit: str = "dit-paper"  # model/config.py DIT_CONFIGS
    dit_overrides: dict = field(default_factory=dict)
    vae: str = "magvit-paper"  # a VAE_CONFIGS preset (random init), a .pt from train-vae, or "pixels"
    text_encoder: str = "google/t5-v1_1-xxl"  # hub id or dir; "tiny" = random tiny T5 (tests, demo)
    text_max_length: int = 256
    image_encoder: str = "dinov2"  # kind; image_encoder_spec None = its default hub id; "learned" = toy
    image_encoder_spec: str | None = None
    image_size: int = 224  # paper Table 6
    init_from: str | None = None  # a bundle to start from (stage II from stage I, III from II)
    flow: dict = field(default_factory=dict)  # FlowConfig overrides
    steps: int = 490_000  # paper Table 7 (stage I)
    warmup: int = 10_000  # paper Table 7 (stage I)
    lr: float = 1e-4  # paper Table 7
    betas: tuple[float, float] = (0.9, 0.99)  # paper Table 7
    weight_decay: float = 0.01  # paper Table 7
    grad_clip: float = 0.05  # paper Table 7
    lr_schedule: str = "constant"  # paper Table 7; "cosine" for the toy
    buckets: str = "paper-288p"  # training/buckets.py BUCKET_PRESETS
    conditioning: ConditioningConfig = ConditioningConfig()
    augment: bool = True  # Table 4 augmentations; False = "augment: off"
    use_cache: bool = False  # read latents from `alchemist encode`'s cache instead of encoding
    ema_decay: float | None = None  # ours: optional EMA of the weights
    bf16: bool = False  # autocast on GPU
    parallel: str = "ddp"  # Ray Train prepare_model strategy: "ddp", or "fsdp" for the large presets
    activation_checkpointing: bool = False  # recompute each block in backward (GPU memory)
    seed: int = 0
    log_every: int = 10
    checkpoint_every: int = 1000

    def __post_init__(self):
        if self.stage not in STAGES:
            raise ValueError(f"stage must be one of {sorted(STAGES)}, got {self.stage}")
        if self.parallel not in ("ddp", "fsdp"):
            raise ValueError(f"parallel must be 'ddp' or 'fsdp', got {self.parallel!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")

    @property
    def uses_references(self) -> bool:
        return STAGES[self.stage]["references"]

    @property
    def trains(self) -> str:
        return STAGES[self.stage]["trains"]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in names}
        d["betas"] = tuple(d.get("betas", (0.9, 0.99)))
        d["conditioning"] = ConditioningConfig(**d.get("conditioning", {}))
        return cls(**d)


# Tiny CPU settings shared by the demo and the tests: tiny DiT, tiny autoencoder, tiny encoders.
_CPU = dict(dit="dit-tiny", vae="magvit-tiny", text_encoder="tiny", text_max_length=32,
            image_encoder="dinov2", image_size=28, buckets="cpu-tiny", warmup=0, log_every=1,
            checkpoint_every=50, flow={"shift": 1.0}, dit_overrides={"max_refs": 10})

TRAIN_CONFIGS = {
    "stage1": TrainConfig(name="stage1", stage=1, steps=490_000, warmup=10_000,  # paper B.2, Table 7
                          bf16=True, activation_checkpointing=True, parallel="fsdp"),
    "stage2": TrainConfig(name="stage2", stage=2, steps=20_000, warmup=0,  # paper B.2, Table 7
                          conditioning=ConditioningConfig(max_entities=6),  # paper Table 5
                          bf16=True, activation_checkpointing=True, parallel="fsdp"),
    "stage3": TrainConfig(name="stage3", stage=3, steps=50_000, warmup=5_000,  # paper B.2, Table 7
                          bf16=True, activation_checkpointing=True, parallel="fsdp"),
    "demo": TrainConfig(name="demo", stage=3, steps=6, **_CPU),
    "cpu-stage1": TrainConfig(name="cpu-stage1", stage=1, steps=20, **_CPU),
    "cpu-stage2": TrainConfig(name="cpu-stage2", stage=2, steps=20, **_CPU),
    "cpu-stage3": TrainConfig(name="cpu-stage3", stage=3, steps=20, **_CPU),
}


def train_config(name: str, **overrides) -> TrainConfig:
    if name not in TRAIN_CONFIGS:
        raise KeyError(f"unknown training config {name!r}; known: {sorted(TRAIN_CONFIGS)}")
    return replace(TRAIN_CONFIGS[name], **overrides)

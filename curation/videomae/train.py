"""`alchemist train-filter`: fine-tune VideoMAE on hand-labelled clips (paper A.1).

The paper labels 40K random training videos with the five classes of `classes.py` and
fine-tunes VideoMAE (Tong et al., 2022) on them. This is that step, as a linear story:

    items          = load_labels(csv)                       # path, label [, start_s, end_s]
    train, val     = stratified_split(items, val_fraction, seed)
    model, proc    = setup_model(base spec)                 # five-way head, mean pooling
    train_loop(...)                                         # AdamW, warmup + cosine, weighted CE
    probs          = predict(model, val)
    report         = evaluate(val labels, probs, train labels)
    save_checkpoint(out)                                    # what VideoMAEStage loads by path

The checkpoint directory holds `save_pretrained` weights + config (id2label = the five
classes), the image processor, `label_maps.json`, `train_config.json`, `report.json`
(per-class precision/recall, confusion matrix, majority-class baseline),
`confusion_matrix.png` and `val_predictions.csv` (the stage reproduces these exactly).
"""
from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from curation.errors import OperatorError
from curation.videomae.classes import (
    ID2LABEL,
    LABEL2ID,
    LABELS,
    normalize_label,
    score_name,
)
from model.media import is_url

log = logging.getLogger(__name__)

CACHE_BUDGET_BYTES = 2 << 30  # our choice: keep decoded clips in RAM below 2 GiB
MAX_GRAD_NORM = 1.0  # gradient clipping (our choice; guards the first steps of a new head)


class LabelFileError(OperatorError, ValueError):
    """A label CSV the trainer cannot use; the message names the row and the fix."""


@dataclass(frozen=True)
class TrainConfig:
    labels: str  # label CSV: path, label [, start_s, end_s]
    out: str  # checkpoint directory to write
    # Self-supervised VideoMAE-base (Kinetics-400), the usual starting point for fine-tuning
    # (Tong et al., 2022); any VideoMAE checkpoint directory or hub id works.
    model: str = "MCG-NJU/videomae-base"
    steps: int = 2000  # optimizer steps (our choice; ~2 epochs of 8-clip batches on 8K clips)
    batch_size: int = 8  # Hugging Face video-classification guide
    lr: float = 5e-5  # Hugging Face video-classification guide for VideoMAE-base
    weight_decay: float = 0.05  # VideoMAE fine-tuning recipe (Tong et al., 2022)
    warmup_frac: float = 0.1  # share of steps with linear warm-up (our choice)
    val_fraction: float = 0.2  # held-out share of every class (our choice)
    seed: int = 0
    flip_p: float = 0.5  # horizontal flips: no class depends on left/right (our choice)
    class_weighting: bool = True  # inverse-frequency CE weights: undesirable classes are rare
    mean_pooling: bool = True  # pool all tokens, as VideoMAE fine-tuning does
    num_workers: int = 0  # DataLoader decode workers when clips are not cached
    cache: str = "auto"  # keep decoded clips in RAM: auto | yes | no
    eval_batch_size: int = 16
    device: str = "auto"
    log_every: int = 50


# ---------------------------------------------------------------- labels and split


def load_labels(csv_path: str | Path) -> list:
    """Label CSV -> ClipItems; rows with an empty label (not yet labelled) are skipped.

    Columns: `path` (or `clip_path`/`source`), `label`, optional `start_s`/`end_s` (or
    `start`/`end`). Relative paths are relative to the CSV's folder.
    """
    from curation.videomae.data import ClipItem

    csv_path = Path(csv_path)
    if not csv_path.exists():
        raise LabelFileError(f"label file {csv_path} does not exist; write one with "
                             f"`alchemist label-sample` and fill in its label column")
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    header = set(rows[0]) if rows else set()
    path_col = next((c for c in ("path", "clip_path", "source") if c in header), None)
    if path_col is None or "label" not in header:
        raise LabelFileError(f"{csv_path} needs a `path` and a `label` column; it has {sorted(header)}")
    items, skipped = [], 0
    for line, row in enumerate(rows, start=2):
        try:
            label = normalize_label(row["label"] or "")
        except ValueError as e:
            raise LabelFileError(f"{csv_path}:{line}: {e}") from None
        if label is None:
            skipped += 1
            continue
        path = row[path_col].strip()
        if not is_url(path) and not Path(path).is_absolute():
            path = str(csv_path.parent / path)
        items.append(ClipItem(path, _float(row, ("start_s", "start")),
                              _float(row, ("end_s", "end")), label))
    if skipped:
        log.warning("%s: %d rows have no label yet and are skipped", csv_path, skipped)
    if not items:
        raise LabelFileError(f"{csv_path} has no labelled rows; fill in the `label` column")
    return items


def _float(row: dict, names: Sequence[str]) -> float | None:
    for name in names:
        if row.get(name) not in (None, ""):
            return float(row[name])
    return None


def stratified_split(items: Sequence, val_fraction: float, seed: int) -> tuple[list, list]:
    """Per class, a seeded shuffle and the first round(n * val_fraction) to validation.

    A class with at least two clips always keeps one on each side, so every labelled class is
    both trained on and measured.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    train, val = [], []
    for label in LABELS:
        members = [it for it in items if it.label == label]
        order = rng.permutation(len(members))
        n_val = int(round(len(members) * val_fraction))
        if len(members) >= 2:
            n_val = min(max(n_val, 1), len(members) - 1)
        val += [members[i] for i in order[:n_val]]
        train += [members[i] for i in order[n_val:]]
    return train, val


def class_weights(items: Sequence) -> list[float]:
    """n / (K * n_c) for each of the K classes present, 0 for absent classes (sklearn's
    "balanced" weighting), in model id order."""
    counts = [sum(it.label == label for it in items) for label in LABELS]
    present = sum(c > 0 for c in counts)
    return [len(items) / (present * c) if c else 0.0 for c in counts]


# ---------------------------------------------------------------- model and data


def setup_model(spec: str, device: Any, mean_pooling: bool = True) -> tuple[Any, Any]:
    """A VideoMAE classifier with the five-class head, and its image processor."""
    from transformers import VideoMAEForVideoClassification, VideoMAEImageProcessor

    from model import model_registry

    model = model_registry.load(
        VideoMAEForVideoClassification, spec, device=device,
        num_labels=len(LABELS), id2label=dict(ID2LABEL), label2id=dict(LABEL2ID),
        use_mean_pooling=mean_pooling, ignore_mismatched_sizes=True,
    )
    processor = model_registry.load(VideoMAEImageProcessor, spec)
    return model, processor


def setup_data(cfg: TrainConfig, train_items: list, val_items: list, processor: Any,
               num_frames: int) -> tuple[Any, Any]:
    from curation.videomae.data import ClipDataset

    crop = processor.crop_size
    per_clip = num_frames * 3 * (crop.height or 224) * (crop.width or 224) * 4  # float32
    total = per_clip * (len(train_items) + len(val_items))
    cache = cfg.cache == "yes" or (cfg.cache == "auto" and total <= CACHE_BUDGET_BYTES)
    return (ClipDataset(train_items, processor, num_frames, cache=cache),
            ClipDataset(val_items, processor, num_frames, cache=cache))


def _batches(dataset: Any, cfg: TrainConfig):
    """Endless shuffled batches (seeded), one epoch after another."""
    import torch

    generator = torch.Generator().manual_seed(cfg.seed)
    workers = 0 if dataset.cache is not None else cfg.num_workers
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=min(cfg.batch_size, len(dataset)), shuffle=True,
        drop_last=True, generator=generator, num_workers=workers)
    while True:
        yield from loader


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up to `lr`, then cosine decay to zero."""
    warmup = max(1, int(cfg.steps * cfg.warmup_frac))
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, cfg.steps - warmup)
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * progress))


# ---------------------------------------------------------------- training and evaluation


def train_loop(model: Any, dataset: Any, cfg: TrainConfig, device: Any) -> list[dict]:
    """`cfg.steps` AdamW steps of (class-weighted) cross-entropy; returns the loss log.
    On GPU the forward pass runs under bf16 autocast with fp32 master weights."""
    import torch

    weights = class_weights(dataset.items) if cfg.class_weighting else [1.0] * len(LABELS)
    loss_fn = torch.nn.CrossEntropyLoss(weight=torch.tensor(weights, device=device))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    flip_gen = torch.Generator().manual_seed(cfg.seed + 1)
    model.train()
    history, running = [], 0.0
    batches = _batches(dataset, cfg)
    for step in range(cfg.steps):
        x, y = next(batches)  # (B, T, C, H, W), (B,)
        flip = torch.rand(x.shape[0], generator=flip_gen) < cfg.flip_p
        x = torch.where(flip[:, None, None, None, None], x.flip(-1), x)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = model(pixel_values=x.to(device)).logits  # (B, K)
        loss = loss_fn(logits.float(), y.to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM)
        opt.step()
        running += loss.item()
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
            n = (step % cfg.log_every) + 1
            history.append({"step": step + 1, "loss": running / n, "lr": lr_at(step, cfg)})
            log.info("step %d loss %.4f", step + 1, running / n)
            running = 0.0
    model.eval()
    return history


def predict(model: Any, dataset: Any, batch_size: int, device: Any) -> Any:
    """Class probabilities `(N, K)` float32 numpy, in dataset order (the stage's math)."""
    import numpy as np
    import torch

    out = []
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(dataset), batch_size):
            x = torch.stack([dataset.clip_tensor(i)
                             for i in range(start, min(start + batch_size, len(dataset)))])
            logits = model(pixel_values=x.to(device, model.dtype)).logits
            out.append(logits.float().softmax(-1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, len(LABELS)), np.float32)


def evaluate(labels: Sequence[str], probs: Any, train_labels: Sequence[str]) -> dict:
    """Accuracy, balanced accuracy, the majority-class baseline, per-class P/R/F1, confusion."""
    import numpy as np

    y = np.array([LABEL2ID[label] for label in labels], dtype=int)
    pred = probs.argmax(1) if len(y) else np.zeros(0, int)
    k = len(LABELS)
    cm = np.zeros((k, k), int)  # rows: true class, columns: predicted class
    np.add.at(cm, (y, pred), 1)
    per_class = {}
    for i, label in enumerate(LABELS):
        tp, support, predicted = cm[i, i], cm[i].sum(), cm[:, i].sum()
        precision = tp / predicted if predicted else None
        recall = tp / support if support else None
        f1 = (2 * precision * recall / (precision + recall)
              if precision and recall else (0.0 if support else None))
        per_class[label] = {"precision": _num(precision), "recall": _num(recall),
                            "f1": _num(f1), "support": int(support)}
    majority = max(LABELS, key=lambda lb: (sum(t == lb for t in train_labels), -LABEL2ID[lb]))
    recalls = [v["recall"] for v in per_class.values() if v["recall"] is not None]
    return {
        "n": int(len(y)),
        "accuracy": _num((pred == y).mean() if len(y) else None),
        "balanced_accuracy": _num(np.mean(recalls) if recalls else None),
        "majority_baseline": {"label": majority,
                              "accuracy": _num((y == LABEL2ID[majority]).mean() if len(y) else None)},
        "per_class": per_class,
        "confusion_matrix": {"labels": list(LABELS), "rows": "true", "columns": "predicted",
                             "matrix": cm.tolist()},
    }


def _num(x: Any) -> float | None:
    return None if x is None else float(x)


def save_confusion_png(report: dict, path: Path) -> Path:
    """The validation confusion matrix (classes that occur) as a PNG heat map."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    cm = np.array(report["confusion_matrix"]["matrix"])
    keep = [i for i in range(len(LABELS)) if cm[i].sum() or cm[:, i].sum()] or list(range(len(LABELS)))
    cm = cm[np.ix_(keep, keep)]
    names = [LABELS[i] for i in keep]
    fig, ax = plt.subplots(figsize=(1.2 * len(keep) + 2.5, 1.2 * len(keep) + 2))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(keep)), names, rotation=30, ha="right")
    ax.set_yticks(range(len(keep)), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    acc = report["accuracy"]
    ax.set_title(f"validation, n={report['n']}, accuracy={acc:.3f}" if acc is not None else "validation")
    for (r, c), v in np.ndenumerate(cm):
        ax.text(c, r, str(v), ha="center", va="center", color="white" if v > cm.max() / 2 else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# ---------------------------------------------------------------- checkpoint


def save_checkpoint(out: Path, model: Any, processor: Any, cfg: TrainConfig, report: dict,
                    val_items: Sequence, probs: Any) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    (out / "label_maps.json").write_text(json.dumps(
        {"id2label": {str(i): lb for i, lb in ID2LABEL.items()}, "label2id": LABEL2ID}, indent=2))
    (out / "train_config.json").write_text(json.dumps(asdict(cfg), indent=2))
    (out / "report.json").write_text(json.dumps(report, indent=2))
    save_confusion_png(report["val"], out / "confusion_matrix.png")
    with open(out / "val_predictions.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "start_s", "end_s", "label", "predicted",
                         *(score_name(lb) for lb in LABELS)])
        for item, p in zip(val_items, probs):
            writer.writerow([item.path, item.start_s, item.end_s, item.label,
                             LABELS[int(p.argmax())], *(repr(float(v)) for v in p)])
    return out


def run(cfg: TrainConfig) -> dict:
    """Train, evaluate and save; returns the report (also in `<out>/report.json`)."""
    import numpy as np
    import torch

    from model import model_registry
    from curation.videomae.data import num_frames_of

    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    items = load_labels(cfg.labels)
    train_items, val_items = stratified_split(items, cfg.val_fraction, cfg.seed)
    if not train_items:
        raise LabelFileError(f"{cfg.labels}: no training clips after the split")
    device = model_registry.device(cfg.device)
    model, processor = setup_model(cfg.model, device, cfg.mean_pooling)
    train_set, val_set = setup_data(cfg, train_items, val_items, processor,
                                    num_frames_of(model.config))
    history = train_loop(model, train_set, cfg, device)
    probs = predict(model, val_set, cfg.eval_batch_size, device)
    counts = {split: {lb: sum(it.label == lb for it in its) for lb in LABELS}
              for split, its in (("train", train_items), ("val", val_items))}
    report = {
        "base_model": cfg.model, "steps": cfg.steps, "seed": cfg.seed,
        "class_counts": counts,
        "class_weights": dict(zip(LABELS, class_weights(train_items))) if cfg.class_weighting else None,
        "loss": history,
        "val": evaluate([it.label for it in val_items], probs, [it.label for it in train_items]),
    }
    save_checkpoint(Path(cfg.out), model, processor, cfg, report, val_items, probs)
    return report


# ---------------------------------------------------------------- command line


def add_train_filter_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "train-filter", help="fine-tune the VideoMAE undesirable-clip classifier on labelled clips",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    d = TrainConfig(labels="", out="")
    p.add_argument("--labels", required=True, help="label CSV: path, label [, start_s, end_s]")
    p.add_argument("--out", required=True, help="checkpoint directory to write")
    p.add_argument("--model", default=d.model, help="base VideoMAE: hub id or local directory")
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    p.add_argument("--val-fraction", type=float, default=d.val_fraction)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--no-class-weighting", dest="class_weighting", action="store_false")
    p.add_argument("--num-workers", type=int, default=d.num_workers)
    p.add_argument("--cache", choices=["auto", "yes", "no"], default=d.cache)
    p.add_argument("--device", default=d.device, help="auto | cpu | cuda[:N]")
    p.set_defaults(func=_train_filter)
    return p


def _train_filter(args: argparse.Namespace) -> int:
    cfg = TrainConfig(labels=args.labels, out=args.out, model=args.model, steps=args.steps,
                      batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
                      val_fraction=args.val_fraction, seed=args.seed,
                      class_weighting=args.class_weighting, num_workers=args.num_workers,
                      cache=args.cache, device=args.device)
    val = run(cfg)["val"]
    base = val["majority_baseline"]
    fmt = lambda x: "n/a" if x is None else f"{x:.3f}"
    print(f"validation: {val['n']} clips, accuracy {fmt(val['accuracy'])}, balanced accuracy "
          f"{fmt(val['balanced_accuracy'])}, majority baseline ({base['label']}) {fmt(base['accuracy'])}")
    print(f"checkpoint: {cfg.out}  (set stages.videomae.model to it and undesirable_filter: videomae)",
          file=sys.stdout)
    return 0

"""Model registry: one way to turn a model spec into a loaded model, for curation and model alike.

A spec is one of
  - a hub id, optionally pinned: ``IDEA-Research/grounding-dino-tiny`` or ``org/name@<revision>``
  - a local directory written by ``save_pretrained`` (or ``alchemist models tiny``)
  - ``package:<distribution>/<path inside site-packages>`` for weights that ship inside an
    installed package (TransNetV2, MTCNN), so the offline profile needs no hub at all.

The standard offline variables (HF_HUB_OFFLINE, TRANSFORMERS_OFFLINE) are honoured by
huggingface_hub itself; we add one clear error line when a model is not available.

It lives in `model/` because the model package must not import curation (docs/architecture.md,
"Layering"); `ModelUnavailable` is an operator mistake like any other (model/errors.py).
"""
from __future__ import annotations

import contextlib
import importlib.metadata
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from model.errors import OperatorError


class ModelUnavailable(OperatorError, RuntimeError):
    """A model spec that cannot be resolved here; the message names the fix."""


@dataclass(frozen=True)
class ModelSpec:
    kind: str  # "hub" | "local" | "package"
    location: str  # hub id, directory or file path
    revision: str | None = None

    @property
    def id(self) -> str:
        """What output rows record as the model id."""
        suffix = f"@{self.revision}" if self.revision else ""
        return f"{self.location}{suffix}" if self.kind != "package" else f"package:{self.location}"


def offline() -> bool:
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes")
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def parse(spec: str) -> ModelSpec:
    if spec.startswith("package:"):
        return ModelSpec("package", spec[len("package:"):])
    path = Path(spec).expanduser()
    if path.exists() or spec.startswith(("/", "./", "../", "~")):
        return ModelSpec("local", str(path))
    name, _, revision = spec.partition("@")
    return ModelSpec("hub", name, revision or None)


# Our choice: a reachable hub answers a metadata request in well under a second; a preflight
# that waits longer than this is slower than the user's patience, not more accurate.
HUB_TIMEOUT_S = 5.0


def resolve(spec: str, *, check_hub: bool = False) -> ModelSpec:
    """Parse a spec and check that it can be loaded here, or raise ModelUnavailable.

    A hub id that is not in the local cache is missing when the hub is offline; with
    `check_hub` (preflight) it is also missing when the hub does not answer within
    HUB_TIMEOUT_S, so workers never sit in download retries."""
    parsed = parse(spec)
    if parsed.kind == "package":
        return ModelSpec("package", str(package_file(parsed.location)))
    if parsed.kind == "local" and not Path(parsed.location).exists():
        raise ModelUnavailable(
            f"model directory {parsed.location} does not exist; write it with "
            f"`save_pretrained`, or `alchemist models tiny --out DIR` for test checkpoints")
    if parsed.kind == "hub" and not _in_hub_cache(parsed):
        why = "the hub is offline" if offline() else _hub_unreachable(parsed) if check_hub else None
        if why:
            raise ModelUnavailable(
                f"model {parsed.location} is not in the local Hugging Face cache and {why}; run "
                f"`huggingface-cli download {parsed.location}` on a networked machine (then copy "
                f"~/.cache/huggingface) or point the setting at a local directory")
    return parsed


def _hub_unreachable(spec: ModelSpec) -> str | None:
    """Why the hub cannot serve `spec` now (None when it can): one metadata request."""
    from huggingface_hub import HfApi

    try:
        HfApi().model_info(spec.location, revision=spec.revision, timeout=HUB_TIMEOUT_S)
    except Exception as e:  # connection refused, timeout, 404, gated: all mean "not here"
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return f"the hub cannot provide it ({type(e).__name__}: {first[:160]})"
    return None


def package_file(location: str) -> Path:
    """`<distribution>/<relpath>` -> the absolute path of that file in the installed package."""
    dist_name, _, rel = location.partition("/")
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError:
        raise ModelUnavailable(
            f"package {dist_name} is not installed; `pip install {dist_name}` "
            f"(it is in Alchemist's dependencies: re-run `make install`)") from None
    path = Path(dist.locate_file(rel))
    if not path.exists():
        raise ModelUnavailable(f"package {dist_name} has no file {rel}; reinstall {dist_name}")
    return path


def _in_hub_cache(spec: ModelSpec) -> bool:
    from huggingface_hub import scan_cache_dir

    try:
        return any(r.repo_id == spec.location for r in scan_cache_dir().repos)
    except Exception:  # no cache directory at all
        return False


def load(cls: Any, spec: str, *, device: Any = None, dtype: Any = None, **kwargs: Any) -> Any:
    """`cls.from_pretrained(spec)` with offline checks, revision pinning and placement."""
    resolved = resolve(spec)
    if dtype is not None:
        kwargs["dtype"] = dtype
    if resolved.revision:
        kwargs["revision"] = resolved.revision
    if loads_weights(cls):
        kwargs["use_safetensors"] = True  # never unpickle a checkpoint (README "Security")
    try:
        model = cls.from_pretrained(resolved.location, **kwargs)
    except OSError as e:  # transformers' way of saying "not found / not downloadable"
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelUnavailable(
            f"cannot load {resolved.id} as {getattr(cls, '__name__', cls)}: {first}") from e
    if device is not None and hasattr(model, "to"):
        model = model.to(device)
    if hasattr(model, "eval"):
        model.eval()
    return model


# Base classes whose `from_pretrained` reads weight files (tokenizers and processors do not).
WEIGHT_LOADERS = ("PreTrainedModel", "_BaseAutoModelClass", "ModelMixin", "DiffusionPipeline")


def loads_weights(cls: Any) -> bool:
    """Whether `cls.from_pretrained` loads model weights: transformers and diffusers models,
    their Auto classes and diffusers pipelines."""
    return any(base.__name__ in WEIGHT_LOADERS for base in getattr(cls, "__mro__", ()))


def device(prefer: str = "auto"):
    """The torch device to run on: cuda when present (and asked for), else cpu."""
    import torch

    if prefer == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if prefer.startswith("cuda") and not torch.cuda.is_available():
        raise ModelUnavailable(f"device {prefer} requested but no CUDA GPU is visible; use device: cpu")
    return torch.device(prefer)


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run a block with `n` intra-op torch threads, then restore the previous setting.

    Tiny models gain nothing from threads, and on a shared 2-core machine spin-waiting
    threads made their steps up to 10x slower; tests, benchmarks and tiny fits use 1.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def half_dtype_for(dev) -> Any:
    """Half precision on GPU (bf16 where supported), full precision on CPU."""
    import torch

    if dev.type != "cuda":
        return torch.float32
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16

"""FLOPs and bytes moved by one forward pass, counted by torch's dispatcher.

FLOPs come from `torch.utils.flop_counter.FlopCounterMode` (matmuls, convolutions and
attention; elementwise work is not counted, as in every published FLOP figure). Bytes are
the tensors each operator reads and writes, as if nothing were fused: an upper bound on
memory traffic, which is what a roofline needs to tell compute-bound from memory-bound work.
Floating tensors count 2 bytes per element, the bf16/fp16 a GPU runs them at, whatever dtype
they were built in here.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode

GPU_FLOAT_BYTES = 2  # bf16 / fp16 inference

# Operators that return a view: no data moves.
_VIEW_OPS = {"view", "_unsafe_view", "reshape", "expand", "permute", "transpose", "t", "slice",
             "select", "unsqueeze", "squeeze", "as_strided", "detach", "alias", "unbind", "split",
             "split_with_sizes", "chunk", "narrow", "view_as", "lift_fresh", "_reshape_alias"}


@dataclass(frozen=True)
class Count:
    flops: float  # floating-point operations (a multiply-add is 2)
    bytes: float  # bytes read and written, unfused

    def __add__(self, other: "Count") -> "Count":
        return Count(self.flops + other.flops, self.bytes + other.bytes)

    def scale(self, factor: float) -> "Count":
        return Count(self.flops * factor, self.bytes * factor)


def _nbytes(t: torch.Tensor) -> int:
    size = GPU_FLOAT_BYTES if t.is_floating_point() else t.element_size()
    return t.numel() * size


class _ByteCounter(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.bytes = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func.__name__.split(".")[0] not in _VIEW_OPS:
            leaves, _ = tree_flatten((args, kwargs, out))
            self.bytes += sum(_nbytes(x) for x in leaves if isinstance(x, torch.Tensor))
        return out


@contextlib.contextmanager
def counting() -> Iterator[Callable[[], Count]]:
    """Count everything run inside the block; call the yielded function for the total."""
    flops, moved = FlopCounterMode(display=False), _ByteCounter()
    with flops, moved, torch.no_grad():
        yield lambda: Count(float(flops.get_total_flops()), float(moved.bytes))


def measure(build: Callable[[], torch.nn.Module], run: Callable[..., Any], device: str = "meta",
            prepare: Callable[[torch.nn.Module], Any] | None = None) -> tuple[Count, int]:
    """(count of `run(model)`, parameter count) for a model built by `build` on `device`.
    With `prepare`, `run(model, prepare(model))`: only `run` is counted (e.g. a KV cache
    filled first, then one decode step counted).

    "meta" builds and runs without memory or arithmetic (shapes only): use it wherever the
    model class supports it. "cpu" really computes, for models with CPU-side tensors in their
    forward pass (random weights: nothing is loaded)."""
    with torch.device(device):
        model = build().eval().requires_grad_(False)  # inference: no autograd hooks
        with torch.no_grad():
            args = (prepare(model),) if prepare else ()
        with counting() as total:
            run(model, *args)
    return total(), sum(p.numel() for p in model.parameters())

"""Statistics of optical-flow fields shared by the motion filter and the benchmark's
dynamic-degree metric, so both read "how much moves" the same way."""
from __future__ import annotations

import numpy as np

# VBench's dynamic-degree rule scores a frame pair by the mean of its largest 5% of flow
# magnitudes: a small mover still registers, a few noisy vectors do not.
TOP_FRACTION = 0.05


def flow_magnitude(flow: np.ndarray) -> np.ndarray:
    """(H, W, 2) flow in pixels -> (H, W) magnitudes."""
    return np.sqrt(np.square(flow[..., 0]) + np.square(flow[..., 1]))


def top_fraction_mean(values: np.ndarray, fraction: float = TOP_FRACTION) -> float:
    """Mean of the largest `fraction` of `values` (at least one value)."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    if flat.size == 0:
        raise ValueError("top_fraction_mean of an empty array")
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    k = max(1, int(round(flat.size * fraction)))
    return float(np.partition(flat, flat.size - k)[flat.size - k:].mean())

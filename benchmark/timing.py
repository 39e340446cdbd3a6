"""Shared timing helper for the benchmark modules."""
import time
from typing import Callable


def best_of(fn: Callable[[], object], repeats: int = 5) -> float:
    """Seconds of the fastest of `repeats` calls after one warm-up call: on a noisy shared
    machine the minimum is the most repeatable estimate of the work itself."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)

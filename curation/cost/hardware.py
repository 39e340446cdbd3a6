"""GPU peaks and the roofline that turns counted work into GPU-seconds."""
from __future__ import annotations

from dataclasses import dataclass

from curation.cost.counting import Count

# Compute-bound work reaches 40% of the dense bf16 peak (a fixed, stated utilisation: real
# kernels at these sizes reach 30-60%); memory-bound work runs at the full bandwidth.
UTILISATION = 0.4


@dataclass(frozen=True)
class Gpu:
    name: str
    peak_tflops: float  # dense bf16 tensor-core peak, TFLOP/s
    bandwidth_gbs: float  # HBM/GDDR bandwidth, GB/s

    def seconds(self, count: Count, utilisation: float = UTILISATION) -> float:
        """Roofline: the slower of compute at `utilisation` of peak and memory traffic."""
        compute = count.flops / (self.peak_tflops * 1e12 * utilisation)
        memory = count.bytes / (self.bandwidth_gbs * 1e9)
        return max(compute, memory)


# Vendor datasheets: A100 SXM 80 GB, H100 SXM, L4 (dense, without sparsity).
GPUS = {
    "a100": Gpu("A100-SXM-80GB", 312.0, 2039.0),
    "h100": Gpu("H100-SXM", 989.0, 3350.0),
    "l4": Gpu("L4", 121.0, 300.0),
}

"""The measured unit table (measured.json): read it, extend it, regenerate it.

`alchemist cost --measure` regenerates the whole file; a unit that a configuration needs and
the file lacks is measured on demand (seconds on the meta device, a minute for the models
counted on the CPU) and reported as such."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from curation.cost.counting import Count
from curation.cost.units import measure_unit

MEASURED = Path(__file__).with_name("measured.json")
log = logging.getLogger(__name__)


class UnitTable:
    def __init__(self, path: Path = MEASURED):
        self.path = path
        data = json.loads(path.read_text()) if path.exists() else {}
        self.units: dict[str, dict] = data.get("units", {})
        self.cpu_seconds: dict[str, dict] = data.get("cpu_seconds", {})
        self.measured_now: list[str] = []
        self.used: set[str] = set()

    def __call__(self, key: str) -> Count:
        self.used.add(key)
        if key not in self.units:
            log.warning("cost unit %s is not in %s: measuring it now", key, self.path.name)
            self.add(key)
            self.measured_now.append(key)
        u = self.units[key]
        return Count(u["flops"], u["bytes"])

    def add(self, key: str) -> None:
        count, params, how = measure_unit(key)
        self.units[key] = {"flops": count.flops, "bytes": count.bytes, "params": params, "how": how}

    def keep_used(self) -> None:
        """Forget units no configuration asked for (e.g. an old prompt length)."""
        self.units = {k: v for k, v in self.units.items() if k in self.used}

    def save(self) -> None:
        self.path.write_text(json.dumps({
            "generated_by": "alchemist cost --measure",
            "torch": torch.__version__,
            "units": dict(sorted(self.units.items())),
            "cpu_seconds": self.cpu_seconds,
        }, indent=1) + "\n")

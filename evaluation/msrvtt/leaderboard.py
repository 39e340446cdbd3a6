"""One leaderboard row per evaluation run, printed beside the paper's published rows.

Published numbers: paper Table 1 (subject mode) and Table 2 (face mode) of *Multi-subject
Open-set Personalization in Video Generation* (arXiv:2501.06187). "-" where the paper reports
no Dync-D (image models).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from evaluation.msrvtt.modes import IDENTITY_METRIC

METRIC_NAMES = {"text_s": "Text-S", "vid_s": "Vid-S", "subj_s": "Subj-S", "face_s": "Face-S",
                "dync_d": "Dync-D"}
PUBLISHED = {  # model: (Text-S, Vid-S, identity, Dync-D)
    "subject": {"ELITE": (0.245, 0.620, 0.359, None), "VideoBooth": (0.222, 0.612, 0.395, 0.448),
                "DreamVideo": (0.261, 0.611, 0.310, 0.311),
                "Video Alchemist": (0.269, 0.732, 0.617, 0.466)},
    "face": {"IP-Adapter": (0.251, 0.648, 0.269, None), "PhotoMaker": (0.278, 0.569, 0.189, None),
             "Magic-Me": (0.251, 0.602, 0.135, 0.418),
             "Video Alchemist": (0.273, 0.687, 0.382, 0.424)},
}


def columns(mode: str) -> list[str]:
    return ["text_s", "vid_s", IDENTITY_METRIC[mode], "dync_d"]


def aggregate(records: list[dict], mode: str) -> dict:
    """Means over scored videos; Dync-D is the fraction of dynamic videos."""
    scored = [r for r in records if "error" not in r]
    row = {"videos": len(scored), "errors": [r["sample"] for r in records if "error" in r]}
    for col in columns(mode):
        values = [r[col]["dynamic"] if col == "dync_d" else r[col]["score"] for r in scored]
        row[col] = float(np.mean(values)) if values else None
    return row


def _cell(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def to_markdown(row: dict) -> str:
    mode = row["mode"]
    cols = columns(mode)
    lines = [f"MSRVTT-Personalization, {mode} mode ({row['videos']} videos scored)", "",
             "| model | " + " | ".join(METRIC_NAMES[c] for c in cols) + " | source |",
             "|---|" + "---|" * (len(cols) + 1)]
    for name, values in PUBLISHED.get(mode, {}).items():
        lines.append(f"| {name} | " + " | ".join(_cell(v) for v in values) + " | paper |")
    lines.append(f"| **{row['model']}** | " + " | ".join(_cell(row[c]) for c in cols) + " | this run |")
    lines += ["", "Backends: " + "; ".join(f"{k}: {v}" for k, v in row["backends"].items())]
    lines += [f"Note: {n}" for n in row["notes"]]
    if row["missing"]:
        lines.append(f"Missing videos (not scored): {len(row['missing'])}")
    if row["errors"]:
        lines.append(f"Videos that failed to score: {', '.join(row['errors'])}")
    return "\n".join(lines) + "\n"


def write(out: Path, row: dict) -> tuple[Path, Path]:
    out = Path(out)
    json_path, md_path = out / "leaderboard.json", out / "leaderboard.md"
    json_path.write_text(json.dumps(row, indent=1))
    md_path.write_text(to_markdown(row))
    return json_path, md_path

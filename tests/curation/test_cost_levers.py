"""The cost levers are real settings: DPM-Solver++ for SD, LaMa as a one-pass inpainter,
GroundingDINO on the middle frame with propagated boxes, vLLM prefix caching."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from curation.background.lama import FFCResNetGenerator, LamaInpainter
from curation.config import ConfigError, build_stage
from curation.localize.grounding_dino import Detection
from curation.localize.propagate import match_box, propagate


def textured_frames(shift=(24, 10), size=(120, 160)):
    """A flat grey scene with a random-textured square that moves by `shift` pixels per frame."""
    rng = np.random.default_rng(0)
    patch = rng.integers(0, 255, (30, 30, 3), dtype=np.uint8)
    frames, boxes = [], []
    for k in range(3):
        img = np.full((*size, 3), 90, np.uint8)
        x, y = 20 + shift[0] * k, 30 + shift[1] * k
        img[y:y + 30, x:x + 30] = patch
        frames.append(img)
        boxes.append((x, y, x + 30, y + 30))
    return frames, boxes


def iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_propagated_boxes_follow_a_moving_subject():
    frames, boxes = textured_frames()
    det = Detection("ladybug", boxes[1], 0.8, 0.7, detector="gd")
    out = propagate([det], frames, middle_index=1)
    assert out[1] == [det]
    for k in (0, 2):
        (moved,) = out[k]
        assert iou(moved.box, boxes[k]) > 0.8
        assert 0.7 < moved.score <= 0.8 and moved.detector == "gd+propagated"


def test_a_subject_gone_from_a_frame_loses_its_score():
    frames, boxes = textured_frames()
    frames[2][:] = 90  # the subject left the scene
    _, score = match_box(frames[1], frames[2], boxes[1])
    assert score < 0.3


def test_grounding_on_one_frame_calls_the_detector_once_per_clip():
    from curation.stages.grounding import GroundingStage, _Clip

    frames, boxes = textured_frames()
    calls = []

    class FakeDino:
        def detect(self, images, words):
            calls.append(len(images))
            return [[Detection(w[0], boxes[1], 0.9, 0.9, detector="gd")] for w in words]

    stage = GroundingStage(detector_frames=1, device="cpu")
    stage._gd = FakeDino()
    clip = _Clip(0, {}, frames, [1, 2, 3], [0.1, 1.0, 1.9], {"ladybug": []}, ["ladybug"], [])
    stage._detect([clip])
    assert calls == [1]
    assert [iou(d[0].box, b) > 0.8 for d, b in zip(clip.detections, boxes)] == [True, True, True]
    with pytest.raises(ValueError, match="detector_frames"):
        GroundingStage(detector_frames=2)


@pytest.fixture(scope="module")
def tiny_lama(tmp_path_factory):
    """A tiny big-lama generator in the TorchScript format big-lama.pt is distributed in."""
    torch.manual_seed(0)
    net = FFCResNetGenerator(ngf=4, blocks=1).eval()
    path = tmp_path_factory.mktemp("lama") / "big-lama.pt"
    torch.jit.save(torch.jit.trace(net, (torch.rand(1, 3, 64, 64), torch.zeros(1, 1, 64, 64))), str(path))
    return path


def test_lama_inpaints_inside_the_mask_only(tiny_lama):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (37, 50, 3), dtype=np.uint8)  # not a multiple of 8: padded
    mask = np.zeros((37, 50), bool)
    mask[10:25, 12:30] = True
    out = LamaInpainter(model=str(tiny_lama.parent), device="cpu")(image, mask)
    assert out.shape == image.shape and np.array_equal(out[~mask], image[~mask])
    assert (out[mask] != image[mask]).any()


def test_lama_missing_checkpoint_names_the_setting(tmp_path):
    with pytest.raises(FileNotFoundError, match="background.lama_model"):
        LamaInpainter(model=str(tmp_path), device="cpu").load()


def test_background_stage_builds_each_backend(tiny_lama):
    stage = build_stage("background", {"backend": "lama", "lama_model": str(tiny_lama)})
    assert stage.models_needed() == {"lama_model": str(tiny_lama)}
    assert stage.make_inpainter().id == "lama:big-lama.pt"
    with pytest.raises(ConfigError):
        build_stage("background", {"sd_schedulr": "x"})


def test_big_lama_generator_has_the_published_size():
    from curation.cost.counting import measure

    _, params = measure(FFCResNetGenerator, lambda m: None)
    assert abs(params - 51e6) < 1e6  # big-lama: ~51M parameters


@pytest.mark.slow
def test_sd_dpm_solver_scheduler_is_swapped_in(tmp_path_factory, monkeypatch):
    from curation.background.inpaint import SDInpainter, make_inpainter
    from curation.background.tiny import write_tiny_sd_inpaint
    from diffusers import DPMSolverMultistepScheduler

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    sd = write_tiny_sd_inpaint(tmp_path_factory.mktemp("tiny_sd"))
    inp = SDInpainter(model=str(sd), size=64, steps=2, device="cpu", scheduler="dpmsolver++")
    inp.load()
    assert isinstance(inp._pipe.scheduler, DPMSolverMultistepScheduler)
    assert inp._pipe.scheduler.config.algorithm_type == "dpmsolver++"
    image = np.full((40, 40, 3), 128, np.uint8)
    mask = np.zeros((40, 40), bool)
    mask[10:20, 10:20] = True
    assert inp(image, mask).shape == image.shape
    with pytest.raises(ValueError, match="scheduler"):
        make_inpainter("sd", scheduler="euler")


def test_vllm_prefix_caching_reaches_the_engine(tmp_path):
    from curation.entities.vllm_backend import VllmExtractor

    backend = VllmExtractor(model=str(tmp_path), prefix_caching=True)
    assert backend.engine_kwargs()["enable_prefix_caching"] is True
    assert dataclasses.replace(backend, prefix_caching=False).engine_kwargs()["enable_prefix_caching"] is False
    stage = build_stage("entities", {"backend": "vllm", "prefix_caching": True})
    assert stage._settings()["prefix_caching"] is True


@pytest.mark.slow
def test_sd_batches_clips_and_each_keeps_its_own_noise(tmp_path_factory, monkeypatch):
    """Two clips in one pipeline call give what each gives alone (per-clip seeded generators)."""
    from curation.background.inpaint import InpaintJob, SDInpainter, inpaint_all
    from curation.background.tiny import write_tiny_sd_inpaint

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    inp = SDInpainter(model=str(write_tiny_sd_inpaint(tmp_path_factory.mktemp("sd"))), size=64, steps=2,
                      device="cpu")
    rng = np.random.default_rng(2)
    jobs = []
    for seed in (3, 4):
        mask = np.zeros((48, 40), bool)
        mask[8:30, 6:22] = True
        jobs.append(InpaintJob(rng.integers(0, 255, (48, 40, 3), dtype=np.uint8), mask, "room", "", seed))
    empty = InpaintJob(jobs[0].image, np.zeros((48, 40), bool))
    calls = []
    real = inp.inpaint_batch
    monkeypatch.setattr(inp, "inpaint_batch", lambda js: calls.append(len(js)) or real(js))
    batched = inpaint_all(inp, [*jobs, empty], batch=8)
    alone = [inp(j.image, j.mask, j.prompt, j.negative_prompt, j.seed) for j in jobs]
    assert calls[0] == 3  # one call for the whole batch
    for b, a in zip(batched, alone):
        assert np.abs(b.astype(int) - a.astype(int)).max() <= 2  # batched float sums differ in the last bits
    assert np.array_equal(batched[2], empty.image)  # nothing to fill: the frame as it was

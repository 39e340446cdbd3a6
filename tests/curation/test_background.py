"""Background: mask geometry, the stage on a synthetic frame (OpenCV inpainting), the
missing-subject rule, and the tiny SD-inpainting pipeline through from_pretrained."""
import numpy as np
import pyarrow as pa
import pytest

from curation.background.mask import foreground_mask
from curation.imaging import decode_png, encode_png, fill_holes, paste_mask
from curation.stages.background import (EMPTY_PROMPT, NEGATIVE_PROMPT, REASONS, BackgroundStage)
from warehouse_schemas import registry

FRAMES = pa.list_(pa.struct(list(registry.schema("frames"))))
ENTITIES = pa.list_(pa.struct(list(registry.schema("entities"))))
REFERENCES = pa.list_(pa.struct(list(registry.schema("references"))))
CLIP = "vid:1000-5000"
H, W = 72, 96
DISC = (40, 30, 14)  # centre x, centre y, radius of the drawn "dog"


# ---------------------------------------------------------------- synthetic clip


def clean_frame(seed=0) -> np.ndarray:
    """A smooth gradient with a little noise: easy to inpaint, hard to leave unchanged by luck."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W]
    img = np.stack([60 + xx, 90 + yy, 140 + 0 * xx], -1).astype(np.float32)
    return np.clip(img + rng.normal(0, 1.0, img.shape), 0, 255).astype(np.uint8)


def frame_with_disc():
    import cv2

    img = clean_frame()
    cx, cy, r = DISC
    cv2.circle(img, (cx, cy), r, (230, 20, 20), -1)
    disc = np.zeros((H, W), np.uint8)
    cv2.circle(disc, (cx, cy), r, 1, -1)
    return img, disc.astype(bool)


def frame_row(k, image):
    return dict(frame_key=f"{CLIP}/frame{k}", clip_key=CLIP, frame_index=k, percentile=(0.05, 0.5, 0.95)[k - 1],
                target_s=float(k), timestamp_s=float(k), width=W, height=H, png=encode_png(image))


def ref_row(word, k, image, full_mask):
    ys, xs = np.nonzero(full_mask)
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    box_mask = full_mask[y0:y1, x0:x1]
    rgba = np.dstack([image[y0:y1, x0:x1], box_mask.astype(np.uint8) * 255])
    return dict(ref_key=f"{CLIP}/{word}/frame{k}", clip_key=CLIP, entity_key=f"{CLIP}/{word}", word=word,
                frame_index=k, box_xyxy=[float(x0), float(y0), float(x1), float(y1)], rgba_png=encode_png(rgba),
                mask_png=encode_png(box_mask), box_score=0.9, mask_score=0.9, detector="test", segmenter="test")


def entity(word, type_):
    return dict(entity_key=f"{CLIP}/{word}", clip_key=CLIP, word=word, type=type_, char_start=0,
                char_end=len(word), extractor="test")


def clip_row(ref_frames=(1, 2, 3), background_word="room"):
    img, disc = frame_with_disc()
    ents = [entity("dog", "subject")] + ([entity(background_word, "background")] if background_word else [])
    return dict(clip_key=CLIP, entities=ents, frames=[frame_row(k, img) for k in (1, 2, 3)],
                references=[ref_row("dog", k, img, disc) for k in ref_frames])


def run(stage, rows):
    table = pa.table({
        "clip_key": pa.array([r["clip_key"] for r in rows]),
        "entities": pa.array([r["entities"] for r in rows], ENTITIES),
        "frames": pa.array([r["frames"] for r in rows], FRAMES),
        "references": pa.array([r["references"] for r in rows], REFERENCES),
    })
    out = stage(table)
    assert out.schema.field("backgrounds").type == BackgroundStage.writes[0].type
    return out.to_pylist()


# ---------------------------------------------------------------- masks


def test_paste_mask_places_a_box_sized_mask_at_its_box():
    m = np.zeros((20, 10), bool)
    m[0, 0] = m[-1, -1] = True
    full = paste_mask(m, (30.4, 5.6, 40.4, 25.6), 50, 40)
    assert np.argwhere(full).tolist() == [[6, 30], [25, 39]]
    # a mask stored at another scale is resized onto its box
    full = paste_mask(np.ones((5, 5), bool), (10, 10, 30, 20), 50, 40)
    assert full.sum() == 200 and full[10:20, 10:30].all()
    # a box crossing the frame border is clipped, not wrapped
    full = paste_mask(np.ones((10, 10), bool), (45, -5, 55, 5), 50, 40)
    assert full.sum() == 25 and full[0:5, 45:50].all()


def test_foreground_mask_dilates_with_a_4x4_kernel_and_fills_holes():
    dot = np.zeros((40, 40), bool)
    dot[20, 20] = True
    grown = foreground_mask([dot], 40, 40, kernel=4, iterations=3)
    ys, xs = np.nonzero(grown)
    assert grown.sum() == 100 and (ys.max() - ys.min() + 1, xs.max() - xs.min() + 1) == (10, 10)
    ring = np.zeros((40, 40), bool)
    ring[10:30, 10:30] = True
    ring[14:26, 14:26] = False
    filled = foreground_mask([ring], 40, 40, iterations=0)
    assert filled[10:30, 10:30].all() and filled.sum() == 400
    edge = np.zeros((10, 10), bool)  # a "hole" open to the border is background, not a hole
    edge[:, 3] = edge[:, 6] = True
    assert fill_holes(edge).sum() == 20


# ---------------------------------------------------------------- stage (OpenCV inpainting)


def test_background_removes_the_shape_and_keeps_every_pixel_outside_the_mask():
    img, disc = frame_with_disc()
    (row,) = run(BackgroundStage(), [clip_row()])
    assert row["status"] == "ok" and row["notes"] == []
    (bg,) = row["backgrounds"]
    pa.Table.from_pylist([bg], schema=registry.schema("backgrounds"))
    assert bg["background_key"] == f"{CLIP}/background" and bg["word"] == "room"
    assert bg["inpainter"] == "opencv:telea"
    mask = decode_png(bg["mask_png"], "L") > 0
    out = decode_png(bg["png"])
    assert mask[disc].all() and mask.sum() > disc.sum()  # dilated beyond the shape
    assert not mask[0].any() and mask.mean() < 0.25
    assert np.array_equal(out[~mask], img[~mask])  # bit-identical outside the mask
    red = (out[..., 0].astype(int) - out[..., 1]) > 80
    assert not red.any()  # the shape is gone
    err = np.abs(out[mask].astype(int) - clean_frame()[mask]).mean()
    assert err < 12  # and what replaced it continues the gradient


def test_a_subject_missing_on_the_middle_frame_gives_no_background():
    (row,) = run(BackgroundStage(), [clip_row(ref_frames=(1, 3))])
    assert row["status"] == "ok" and row["backgrounds"] == []
    (n,) = row["notes"]
    assert (n["level"], n["reason"], n["entity"], n["frame_index"]) == (
        "background", "subject_missing_on_middle_frame", "dog", 2)
    assert n["reason"] in REASONS


def test_a_frame_mostly_covered_by_the_foreground_gives_no_background():
    row = clip_row()
    img = decode_png(row["frames"][1]["png"])
    row["references"] = [ref_row("dog", 2, img, np.ones((H, W), bool))]
    (out,) = run(BackgroundStage(), [row])
    assert out["backgrounds"] == [] and out["notes"][0]["reason"] == "mask_too_large"


class Recorder:
    id = "recorder"

    def __call__(self, image, mask, prompt, negative_prompt, seed):
        self.calls = (prompt, negative_prompt, seed)
        return image


@pytest.mark.parametrize("word, prompt", [("beach", "beach"), (None, EMPTY_PROMPT)])
def test_prompt_is_the_background_word_or_the_empty_scene_prompt(word, prompt):
    stage = BackgroundStage(backend="sd")
    stage._inpainter = Recorder()
    stage._ready = True  # the recorder stands in for what setup() would load
    (row,) = run(stage, [clip_row(background_word=word)])
    assert stage._inpainter.calls[:2] == (prompt, NEGATIVE_PROMPT)
    assert row["backgrounds"][0]["prompt"] == prompt and row["backgrounds"][0]["word"] == word
    seed = stage._inpainter.calls[2]
    run(stage, [clip_row(background_word=word)])
    assert stage._inpainter.calls[2] == seed  # per-clip seed: same clip, same seed


# ---------------------------------------------------------------- tiny SD inpainting


@pytest.fixture(scope="module")
def tiny_sd(tmp_path_factory):
    from curation.background.tiny import write_tiny_sd_inpaint

    return write_tiny_sd_inpaint(tmp_path_factory.mktemp("tiny_sd"))


@pytest.mark.slow
def test_tiny_sd_inpaint_pipeline_writes_a_schema_valid_background(tiny_sd, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    img, disc = frame_with_disc()
    stage = BackgroundStage(backend="sd", sd_model=str(tiny_sd), sd_size=64, steps=2, device="cpu")
    stage.setup()
    from diffusers import StableDiffusionInpaintPipeline

    assert isinstance(stage._inpainter._pipe, StableDiffusionInpaintPipeline)
    assert stage._inpainter._pipe.unet.config.in_channels == 9
    (row,) = run(stage, [clip_row(background_word="beach")])
    (bg,) = row["backgrounds"]
    pa.Table.from_pylist([bg], schema=registry.schema("backgrounds"))
    assert bg["inpainter"] == f"sd:{tiny_sd}"
    assert (bg["prompt"], bg["negative_prompt"]) == ("beach", NEGATIVE_PROMPT)
    mask = decode_png(bg["mask_png"], "L") > 0
    out = decode_png(bg["png"])
    assert out.shape == img.shape and np.array_equal(out[~mask], img[~mask])
    assert (out[mask] != img[mask]).any()  # random weights still repaint the masked pixels


def test_tiny_tokenizer_has_whole_word_merges(tiny_sd):
    from transformers import CLIPTokenizer

    tok = CLIPTokenizer.from_pretrained(tiny_sd / "tokenizer")
    ids = tok("clean and empty background").input_ids
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id and len(ids) == 6
    assert tok.decode(ids, skip_special_tokens=True) == "clean and empty background"
    assert len(tok("a zebra").input_ids) > 4  # an unseen word falls back to smaller pieces

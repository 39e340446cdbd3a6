"""Grounding stage: prompts, token-to-word post-processing on stubbed model outputs, the
entity- and clip-level rejections, and tiny GroundingDINO + SAM through `from_pretrained`."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pyarrow as pa
import pytest

from curation.localize import grounding_dino as gd
from curation.imaging import decode_png, encode_png
from curation.localize.tiny import write_tiny_grounding_dino, write_tiny_sam
from curation.stages.grounding import REASONS, GroundingStage
from warehouse_schemas import registry

FRAMES = pa.list_(pa.struct(list(registry.schema("frames"))))
ENTITIES = pa.list_(pa.struct(list(registry.schema("entities"))))
WORK = pa.schema([("clip_key", pa.string()), ("source", pa.string()), ("start_s", pa.float64()),
                  ("end_s", pa.float64()), ("entities", ENTITIES), ("frames", FRAMES)])


# ---------------------------------------------------------------- fixtures and builders


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny_localize")
    return write_tiny_grounding_dino(root / "gd"), write_tiny_sam(root / "sam")


@pytest.fixture(scope="module")
def tiny_stage(tiny_dirs):
    gd_dir, sam_dir = tiny_dirs
    stage = GroundingStage(detector_model=str(gd_dir), segmenter_model=str(sam_dir), device="cpu",
                           box_threshold=0.0, text_threshold=0.0, max_detections_per_word=3)
    stage.setup()
    return stage


def clip_row(clip, words, images, source=None):
    frames = [dict(frame_key=f"{clip}/frame{k}", clip_key=clip, frame_index=k, percentile=p,
                   target_s=float(k), timestamp_s=float(k), width=im.shape[1], height=im.shape[0],
                   png=encode_png(im))
              for k, (p, im) in enumerate(zip((0.05, 0.5, 0.95), images), start=1)]
    entities = [dict(entity_key=f"{clip}/{w}", clip_key=clip, word=w, type=t, char_start=0,
                     char_end=len(w), extractor="test") for w, t in words]
    return dict(clip_key=clip, source=source, start_s=0.0, end_s=3.0, entities=entities, frames=frames)


def table(rows):
    return pa.Table.from_pylist(rows, WORK)


def assert_valid(rows: list[dict], name: str) -> None:
    """Rows convert to the table's schema and leave no non-nullable column null."""
    t = pa.Table.from_pylist(rows, schema=registry.schema(name))
    t.validate(full=True)
    for f in t.schema:
        if not f.nullable:
            assert t[f.name].null_count == 0, f"{name}.{f.name} has nulls"


# ---------------------------------------------------------------- prompts and tokens


def test_prompt_is_groundingdino_format_with_word_spans():
    p = gd.build_prompt(["Man", "red ball", "st. bernard"])
    assert p.text == "man. red ball. st bernard."
    assert [p.text[s:e] for s, e in p.spans] == ["man", "red ball", "st bernard"]
    assert p.words == ("Man", "red ball", "st. bernard")


def test_token_groups_follow_the_tokenizer_offsets(tiny_dirs):
    from transformers import AutoProcessor

    tok = AutoProcessor.from_pretrained(tiny_dirs[0]).tokenizer
    p = gd.build_prompt(["man", "long brown-hair", "dog"])
    enc = tok(p.text, return_offsets_mapping=True)
    tokens = tok.convert_ids_to_tokens(enc["input_ids"])
    groups = gd.token_groups(enc["offset_mapping"], p.spans)
    assert [[tokens[t] for t in g] for g in groups] == [["man"], ["long", "brown", "-", "hair"], ["dog"]]


def test_long_word_lists_are_split_into_prompts_that_fit():
    count = lambda text: len(text.split()) + 2  # noqa: E731  ([CLS] + words + [SEP])
    prompts = gd.pack_prompts(["a b", "c", "d e f", "g"], count, max_tokens=5)
    assert [p.words for p in prompts] == [("a b", "c"), ("d e f",), ("g",)]
    assert all(count(p.text) <= 5 for p in prompts)


# ---------------------------------------------------------------- post-processing on known logits


def logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


def test_each_box_goes_to_its_best_word_and_words_rank_their_boxes():
    words, groups = ["dog", "red ball"], [[1], [3, 4]]
    logits = np.full((4, 8), -20.0)  # (Q, T): 4 queries, tokens [CLS] dog . red ball . [SEP] pad
    logits[0, 1] = logit(0.6)  # dog, second best
    logits[1, 1] = logit(0.9)  # dog, best
    logits[2, [1, 3, 4]] = logit(0.3), logit(0.8), logit(0.4)  # both words lit: red ball wins
    logits[3, 1] = logit(0.05)  # under the floor
    boxes = np.array([[0.5, 0.5, 0.2, 0.2], [0.25, 0.5, 0.5, 1.0], [0.5, 0.5, 1.0, 1.0], [0.1, 0.1, 0.1, 0.1]])
    dets = gd.assign_boxes(logits, boxes, words, groups, width=200, height=100, floor=0.1, max_per_word=5)
    by = {(d.word, d.rank): d for d in dets}
    assert set(by) == {("dog", 0), ("dog", 1), ("red ball", 0)}
    assert by["dog", 0].score == pytest.approx(0.9) and by["dog", 0].box == pytest.approx((0, 0, 100, 100))
    assert by["dog", 1].score == pytest.approx(0.6)
    ball = by["red ball", 0]
    assert ball.score == pytest.approx(0.8) and ball.text_score == pytest.approx(0.6)
    assert ball.box == pytest.approx((0, 0, 200, 100))


def test_select_applies_box_and_text_thresholds():
    def det(word, score, text, box=(0, 0, 10, 10)):
        return gd.Detection(word=word, box=box, score=score, text_score=text)

    dets = [det("dog", 0.5, 0.5), det("dog", 0.7, 0.7, (5, 5, 20, 20)), det("cat", 0.3, 0.3),
            det("red ball", 0.6, 0.2), det("hat", 0.9, 0.9, (10, 10, 10, 20))]
    chosen = gd.select(dets, box_threshold=0.35, text_threshold=0.25)
    assert set(chosen) == {"dog"}  # cat under box, red ball under text, hat degenerate
    assert chosen["dog"].score == 0.7


# ---------------------------------------------------------------- the stage on a stubbed model


class ScriptedDino:
    """Stands in for GroundingDinoForObjectDetection: each image's grey level selects a
    script of queries, each lighting given tokens with given probabilities at a given box."""

    def __init__(self, tokenizer, processor, scripts, n_queries=16, max_text_len=64):
        self.tok, self.scripts, self.n_queries, self.max_text_len = tokenizer, scripts, n_queries, max_text_len
        ip = processor.image_processor
        self.mean, self.std = float(ip.image_mean[0]), float(ip.image_std[0])
        self.config = SimpleNamespace(max_text_len=max_text_len)

    def __call__(self, pixel_values, input_ids, **_):
        import torch

        b = len(input_ids)
        logits = torch.full((b, self.n_queries, self.max_text_len), -20.0)
        boxes = torch.full((b, self.n_queries, 4), 0.5)
        for i in range(b):
            grey = round((float(pixel_values[i, 0, 0, 0]) * self.std + self.mean) * 255)
            tokens = self.tok.convert_ids_to_tokens(input_ids[i].tolist())
            for q, (lit, box) in enumerate(self.scripts.get(grey, [])):
                for token, p in lit.items():
                    if token in tokens:  # the script may name words this prompt does not have
                        logits[i, q, tokens.index(token)] = logit(p)
                boxes[i, q] = torch.tensor(box)
        return SimpleNamespace(logits=logits, pred_boxes=boxes)


class BoxSegmenter:
    """Stands in for SAM: the mask is the box."""

    id = "stub:box"

    def segment(self, images, boxes):
        out = []
        for im, bs in zip(images, boxes):
            masks = []
            for x0, y0, x1, y1 in bs:
                m = np.zeros(im.shape[:2], bool)
                m[int(y0):int(np.ceil(y1)), int(x0):int(np.ceil(x1))] = True
                masks.append((m, 0.9))
            out.append(masks)
        return out


def grey(level, w=80, h=60):
    return np.full((h, w, 3), level, np.uint8)


# Boxes are (cx, cy, w, h) normalised; on an 80x60 frame A = (0, 0, 40, 30) etc.
A, B, C = (0.25, 0.25, 0.5, 0.5), (0.75, 0.75, 0.5, 0.5), (0.5, 0.5, 1.0, 1.0)
SCRIPTS = {
    # clip 1: dog (subject), red ball and hat (objects)
    11: [({"dog": 0.6}, B), ({"dog": 0.9}, A), ({"red": 0.8, "ball": 0.7}, C), ({"hat": 0.2}, A)],
    12: [({"dog": 0.5}, B), ({"red": 0.4, "ball": 0.01}, C)],  # ball: box ok, text mean 0.2 too low
    13: [({"dog": 0.05}, A), ({"dog": 0.45, "red": 0.6, "ball": 0.3}, C)],  # that box is the ball's
    # clip 2: cat (subject) never reaches the box threshold; cup (object) does
    21: [({"cat": 0.3}, A), ({"cup": 0.9}, B)], 22: [({"cat": 0.3}, A)], 23: [({"cat": 0.34}, A)],
}


@pytest.fixture(scope="module")
def scripted_stage(tiny_dirs):
    stage = GroundingStage(detector_model=str(tiny_dirs[0]), device="cpu")  # defaults: 0.35 / 0.25 / 0.1
    wrapper = gd.GroundingDino(str(tiny_dirs[0]), device="cpu", floor=stage.detection_floor,
                               max_per_word=stage.max_detections_per_word)
    wrapper.model = ScriptedDino(wrapper.processor.tokenizer, wrapper.processor, SCRIPTS)
    stage._gd, stage._sam, stage.segmenter_id, stage._ready = wrapper, BoxSegmenter(), "stub:box", True
    return stage


@pytest.fixture(scope="module")
def scripted_out(scripted_stage):
    rows = [clip_row("v1:0-3000", [("dog", "subject"), ("red ball", "object"), ("hat", "object"),
                                   ("kitchen", "background")], [grey(11), grey(12), grey(13)]),
            clip_row("v2:0-3000", [("cat", "subject"), ("cup", "object")], [grey(21), grey(22), grey(23)])]
    out = scripted_stage(table(rows))
    assert out.schema.field("references").type == GroundingStage.writes[0].type
    return {r["clip_key"]: r for r in out.to_pylist()}


def test_best_box_per_word_and_frame_is_kept_for_the_right_word(scripted_out):
    refs = {(r["word"], r["frame_index"]): r for r in scripted_out["v1:0-3000"]["references"]}
    assert set(refs) == {("dog", 1), ("dog", 2), ("red ball", 1), ("red ball", 3)}
    assert refs["dog", 1]["box_xyxy"] == [0, 0, 40, 30] and refs["dog", 1]["box_score"] == pytest.approx(0.9)
    assert refs["dog", 2]["box_xyxy"] == [40, 30, 80, 60] and refs["dog", 2]["box_score"] == pytest.approx(0.5)
    assert refs["red ball", 3]["box_xyxy"] == [0, 0, 80, 60] and refs["red ball", 3]["box_score"] == pytest.approx(0.6)
    assert refs["red ball", 1]["ref_key"] == "v1:0-3000/red_ball/frame1"
    assert refs["dog", 1]["entity_key"] == "v1:0-3000/dog"
    assert all(r["detector"].startswith("grounding_dino:") and r["segmenter"] == "stub:box"
               for r in refs.values())
    rgba = decode_rgba(refs["dog", 1]["rgba_png"])
    assert rgba.shape == (30, 40, 4) and (rgba[..., 3] == 255).all()


def decode_rgba(data):
    import cv2

    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)


def test_every_box_above_the_floor_is_stored_for_retuning(scripted_out):
    dets = scripted_out["v1:0-3000"]["detections"]
    keyed = {(d["word"], d["frame_index"], d["rank"]): d for d in dets}
    assert keyed["dog", 1, 0]["selected"] and not keyed["dog", 1, 1]["selected"]
    assert keyed["dog", 1, 1]["score"] == pytest.approx(0.6)
    assert not keyed["hat", 1, 0]["selected"] and keyed["hat", 1, 0]["score"] == pytest.approx(0.2)
    ball2 = keyed["red ball", 2, 0]  # passed the box threshold, failed the text threshold
    assert not ball2["selected"] and ball2["text_score"] == pytest.approx(0.205)
    assert ("dog", 3, 0) not in keyed  # 0.05 is under the floor; its other box went to the ball
    assert keyed["red ball", 1, 0]["prompt"] == "dog. red ball. hat."
    assert keyed["dog", 1, 0]["det_key"] == "v1:0-3000/dog/frame1/0"
    assert_valid(dets, "detections")


def test_word_found_nowhere_gets_an_entity_rejection_and_the_clip_passes(scripted_out):
    row = scripted_out["v1:0-3000"]
    assert row["status"] == "ok"
    assert [(n["entity"], n["reason"]) for n in row["notes"]] == [("hat", "entity_not_found")]
    assert "frame1 0.20" in row["notes"][0]["detail"]
    assert row["grounding_subjects_found"] == 1 and row["grounding_entities_found"] == 2
    assert not any(r["word"] == "kitchen" for r in row["references"])  # backgrounds are not localized


def test_subject_found_nowhere_rejects_the_clip(scripted_out):
    row = scripted_out["v2:0-3000"]
    assert row["status"] == "rejected" and row["reason"] == "subject_not_found"
    assert ("cat", "entity_not_found") in [(n["entity"], n["reason"]) for n in row["notes"]]
    assert row["grounding_subject_score"] == pytest.approx(0.34)
    assert [r["word"] for r in row["references"]] == ["cup"]  # kept for inspection, never exploded
    assert set(REASONS) >= {row["reason"], "entity_not_found", "no_offline_localizer"}


def test_require_all_subjects_rejects_a_clip_missing_one():
    strict = GroundingStage(detector="offline", segmenter="grabcut", require_all_subjects=True)
    def verdict(stage, subjects, found):
        return stage.decide(dict(subject_words=subjects, subjects_localized=found)).reason

    assert verdict(strict, ["man", "dog"], ["man"]) == "subject_not_found"
    assert verdict(strict, ["man", "dog"], ["man", "dog"]) is None
    lenient = GroundingStage(detector="offline", segmenter="grabcut")
    assert verdict(lenient, ["man", "dog"], ["man"]) is None
    assert verdict(lenient, [], []) == "subject_not_found"


def test_rows_without_frames_are_rejected_not_raised(scripted_stage):
    row = clip_row("v3:0-3000", [("dog", "subject")], [])
    out = scripted_stage(table([row])).to_pylist()[0]
    assert out["status"] == "rejected" and out["reason"] == "missing_frames"


def test_a_broken_clip_fails_alone(scripted_stage):
    good = clip_row("v1:0-3000", [("dog", "subject")], [grey(11), grey(12), grey(13)])
    bad = clip_row("v4:0-3000", [("dog", "subject")], [grey(11), grey(12), grey(13)])
    bad["frames"][1]["png"] = b"not a png"
    out = scripted_stage(table([bad, good])).to_pylist()
    assert out[0]["reason"] == "grounding_error" and "not a decodable image" in out[0]["detail"]
    assert out[1]["status"] == "ok" and out[1]["references"]


def test_settings_are_validated():
    with pytest.raises(ValueError, match="detector"):
        GroundingStage(detector="yolo")
    with pytest.raises(ValueError, match="box_threshold"):
        GroundingStage(box_threshold=1.5)


# ---------------------------------------------------------------- tiny real checkpoints


def textured(seed, w, h):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 255, (h, w, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def tiny_rows():
    words = [[("man", "subject"), ("red ball", "object")], [("dog", "subject")],
             [("woman", "subject"), ("hat", "object"), ("cup", "object")], [("cat", "subject")]]
    sizes = [(80, 60), (80, 60), (80, 60), (60, 90)]  # one clip of another size: its own forward group
    return [clip_row(f"t{i}:0-3000", ws, [textured(10 * i + k, *sizes[i]) for k in range(3)])
            for i, ws in enumerate(words)]


def test_tiny_checkpoints_produce_schema_valid_rows(tiny_stage, tiny_rows):
    out = tiny_stage(table(tiny_rows)).to_pylist()
    assert [r["status"] for r in out] == ["ok"] * 4
    refs = [r for row in out for r in row["references"]]
    for row, given in zip(out, tiny_rows):  # random weights: a word may own no box, but then says so
        found = {r["word"] for r in row["references"]} | {n["entity"] for n in row["notes"]}
        assert found == {e["word"] for e in given["entities"]}
    assert len(refs) >= 3 * len(tiny_rows)
    assert_valid(refs, "references")
    assert_valid([d for row in out for d in row["detections"]], "detections")
    for r in refs:
        x0, y0, x1, y1 = r["box_xyxy"]
        assert decode_rgba(r["rgba_png"]).shape == (y1 - y0, x1 - x0, 4)
        assert decode_png(r["mask_png"]).shape[:2] == (y1 - y0, x1 - x0)
        assert r["segmenter"].startswith("sam:") and r["mask_score"] is not None


def test_batch_of_four_equals_four_batches_of_one(tiny_stage, tiny_rows):
    together = tiny_stage(table(tiny_rows)).to_pylist()
    alone = [tiny_stage(table([row])).to_pylist()[0] for row in tiny_rows]
    for a, b in zip(together, alone):
        assert [r["ref_key"] for r in a["references"]] == [r["ref_key"] for r in b["references"]]
        for ra, rb in zip(a["references"], b["references"]):
            assert ra["box_xyxy"] == rb["box_xyxy"]
            assert ra["box_score"] == pytest.approx(rb["box_score"], abs=1e-5)
            ma, mb = decode_png(ra["mask_png"])[..., 0] > 0, decode_png(rb["mask_png"])[..., 0] > 0
            assert (ma != mb).mean() <= 0.001
        assert [(d["det_key"], d["box_xyxy"]) for d in a["detections"]] == \
               [(d["det_key"], d["box_xyxy"]) for d in b["detections"]]


def test_half_precision_path_runs_end_to_end(tiny_dirs):
    """GPU runs use half precision; bfloat16 on CPU exercises the same dtype handling."""
    import torch

    from curation.localize.sam import Sam

    detector = gd.GroundingDino(str(tiny_dirs[0]), device="cpu", dtype=torch.bfloat16, floor=0.0)
    segmenter = Sam(str(tiny_dirs[1]), device="cpu", dtype=torch.bfloat16)
    assert next(detector.model.parameters()).dtype == torch.bfloat16
    image = textured(7, 80, 60)
    dets = detector.detect([image], [["man", "red ball"]])[0]
    assert dets and all(np.isfinite(d.score) for d in dets)
    (mask, iou), = segmenter.segment([image], [[dets[0].box]])[0]
    assert mask.shape == (60, 80) and mask.dtype == bool and np.isfinite(iou)

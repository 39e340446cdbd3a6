"""Which samples each mode takes and the aligned lists it writes."""
import json

import numpy as np

from evaluation.msrvtt import layout, modes


def make_sample(root, name, tags, refs=(), faces=(), background=False):
    folder = root / layout.SAMPLES_DIR / name
    layout.write_text_files(folder, f"caption of {name}", tags)
    pixel = np.zeros((4, 4, 4), np.uint8)
    for word in refs:
        for k in (1, 2, 3):
            layout.write_rgba(folder / layout.ref_name(word, k), pixel)
    for word in faces:
        layout.write_rgba(folder / layout.ref_name(word, 2, face=True), pixel)
    if background:
        layout.write_rgb(folder / layout.BACKGROUND, pixel[..., :3])


def test_modes_select_samples_and_align_their_lists(tmp_path):
    make_sample(tmp_path, "one_man", {"subject": ["man"], "background": ["beach"]}, ["man"], ["man"], True)
    make_sample(tmp_path, "dog_ball", {"subject": ["dog"], "object": ["red ball"]}, ["dog", "red ball"])
    make_sample(tmp_path, "two_people", {"subject": ["man", "woman"]}, ["man", "woman"], ["man"])
    make_sample(tmp_path, "unlocated", {"subject": ["cat"]})  # no reference: in no mode
    counts = modes.write_modes(tmp_path)
    assert counts == {"subject": 2, "face": 1, "multi_subject": 2, "subject_background": 1}
    subject = modes.load_mode(tmp_path, "subject")
    assert subject.samples == ["dog_ball", "one_man"]
    assert subject.prompts == ["caption of dog_ball", "caption of one_man"]
    assert [c.word for cs in subject.conditions for c in cs] == ["dog", "man"]
    assert subject.conditions[0][0].images == [f"samples/dog_ball/dog.frame{k}.png" for k in (1, 2, 3)]
    face = modes.load_mode(tmp_path, "face")
    assert face.samples == ["one_man"] and face.conditions[0][0].images == ["samples/one_man/man.face.frame2.png"]
    multi = modes.load_mode(tmp_path, "multi_subject")
    assert multi.samples == ["dog_ball", "two_people"]
    assert [c.images[0] for c in multi.conditions[0]] == ["samples/dog_ball/dog.frame1.png",
                                                          "samples/dog_ball/red_ball.frame1.png"]
    background = json.loads((tmp_path / "modes" / "subject_background.json").read_text())
    assert background["conditions"][0][1] == {"word": "beach", "type": "background",
                                              "images": ["samples/one_man/background.jpg"]}

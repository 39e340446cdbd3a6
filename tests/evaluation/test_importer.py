"""The importer on records in the release's format, and its restricted unpickler."""
import gzip
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from evaluation.msrvtt import importer, layout
from evaluation.msrvtt.modes import build_mode

FPS, N_FRAMES, HW = 10, 40, (64, 96)


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """An MSR-VTT-like video (frame i is filled with value 5 i) and one sample's records."""
    from curation.synthetic import write_video

    root = tmp_path_factory.mktemp("release")
    frames = np.stack([np.full((*HW, 3), 5 * i, np.uint8) for i in range(N_FRAMES)])
    write_video(frames, root / "videos" / "video42.mp4", fps=FPS)
    ann = root / "annotations"
    ann.mkdir()
    info = {"video": "video42.mp4", "resolution": [48, 32], "caption": "A man walks a dog.",
            "timestamp": ["00:00:01.000000", "00:00:03.000000"],
            "word_tags": {"background": [], "subject": ["man", "dog"], "object": []}}
    (ann / "s1.vid_info.json").write_text(json.dumps(info))
    mask = np.zeros((12, 10), np.uint8)  # box-sized (h 10 + 2 rows more than the crop at the border)
    mask[2:8, 3:7] = 1
    records = {"man": [{"filename": "frame2.jpg", "box_xyxy": [4, 22, 14, 32], "mask": mask,
                        "is_face_crop": False},
                       {"filename": "frame1.jpg", "box_xyxy": [0, 0, 4, 4], "mask": [[1, 1, 0, 0]] * 4,
                        "is_face_crop": True}],
               "dog": [{"filename": "frame3.jpg", "box_xyxy": [20, 5, 30, 15], "mask": np.ones((10, 10), bool),
                        "is_face_crop": False}]}
    with gzip.open(ann / "s1.word_tags_masks.pkl.gz", "wb") as f:
        pickle.dump(records, f)
    return root


def test_import_reproduces_the_release_files(release, tmp_path):
    report = importer.import_release(release / "annotations", release / "videos", tmp_path)
    assert report == {"imported": ["s1"], "rejected": []}
    sample = tmp_path / "samples" / "s1"
    names = sorted(p.name for p in sample.iterdir())
    assert names == sorted(["video.mp4", "frame1.jpg", "frame2.jpg", "frame3.jpg", "summary_text.txt",
                            "word_tags.json", "man.frame2.png", "man.face.frame1.png", "dog.frame3.png",
                            "background.jpg"])
    from curation.synthetic import read_frames

    clip = read_frames(sample / "video.mp4")
    assert clip.shape == (20, 32, 48, 3)  # 2 s at 10 fps, resized to the annotated 48x32
    # frames at 5/50/95% of the 2 s clip: clip frames 1, 10, 19 = source frames 11, 20, 29
    for k, source_index in ((1, 11), (2, 20), (3, 29)):
        assert layout.read_rgb(sample / f"frame{k}.jpg").mean() == pytest.approx(5 * source_index, abs=3)
    man = layout.read_rgba(sample / "man.frame2.png")
    assert man.shape == (10, 10, 4)  # the 12-row mask was cropped to the box
    assert (man[..., 3] > 0).sum() == 24 and man[2, 3, 3] == 255 and man[0, 0, 3] == 0
    assert json.loads((sample / "word_tags.json").read_text())["subject"] == ["man", "dog"]
    assert (sample / "summary_text.txt").read_text() == "A man walks a dog."
    assert build_mode(tmp_path, "multi_subject").samples == ["s1"]  # man + dog
    assert build_mode(tmp_path, "subject").samples == []  # two subjects


class Boom:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/i15_pwned",))


@pytest.mark.parametrize("payload, named", [
    ({"man": [Boom()]}, "system"),
    ({"man": [{"mask": np.array([1, "x"], dtype=object)}]}, "not numeric"),
    ({"man": [{"mask": np.ones(3)}], "where": Path("/tmp")}, "PosixPath"),
])
def test_malicious_pickles_are_refused_naming_the_class(payload, named):
    with pytest.raises(importer.UnsafePickleError, match=named):
        importer.restricted_loads(pickle.dumps(payload))


def test_numeric_arrays_and_plain_containers_load():
    data = {"w": [{"mask": np.eye(3, dtype=bool), "box_xyxy": (1, 2, 3, 4), "s": {1.5, 2}, "i": np.int64(3)}]}
    back = importer.restricted_loads(pickle.dumps(data))
    assert back["w"][0]["mask"].dtype == bool and back["w"][0]["i"] == 3


def test_a_malicious_sample_is_rejected_and_nothing_runs(release, tmp_path):
    ann = tmp_path / "ann"
    ann.mkdir()
    (ann / "bad.vid_info.json").write_text((release / "annotations" / "s1.vid_info.json").read_text())
    with gzip.open(ann / "bad.word_tags_masks.pkl.gz", "wb") as f:
        pickle.dump({"man": [Boom()]}, f)
    marker = "/tmp/i15_pwned"
    if os.path.exists(marker):
        os.remove(marker)
    report = importer.import_release(ann, release / "videos", tmp_path / "out")
    assert report["imported"] == [] and report["rejected"][0]["reason"] == "unsafe_pickle"
    assert "posix.system" in report["rejected"][0]["detail"] or "os.system" in report["rejected"][0]["detail"]
    assert not os.path.exists(marker)
    assert not (tmp_path / "out" / "samples" / "bad").exists()

"""Pre-processing of the metric models, on stub networks and crafted images."""
import numpy as np
import pytest

from evaluation.msrvtt import scorers


def test_release_prompt_joins_words_with_spaced_periods_and_spans_each_word():
    text, spans = scorers.release_prompt(["man", "Red Ball"])
    assert text == "man . red ball ."
    assert [text[s:e] for s, e in spans] == ["man", "red ball"]


def test_reference_rgba_becomes_a_white_square():
    rgba = np.zeros((10, 4, 4), np.uint8)
    rgba[..., :3] = 7
    rgba[2:5, 1:3, 3] = 255
    square = scorers.rgba_to_white_square(rgba)
    assert square.shape == (10, 10, 3)
    assert (square[2:5, 4:6] == 7).all()  # the opaque pixels, centred by 3 columns
    assert (square == 255).sum() == 3 * (100 - 6)


class StubNet:
    def setInput(self, blob):
        self.blob = blob

    def forward(self):
        return self.blob.reshape(len(self.blob), -1)[:, :512]


def test_arcface_input_is_112_rgb_scaled_to_minus_one_one():
    faces = scorers.FaceIdentity(arcface_net=StubNet())
    crop = np.zeros((50, 40, 3), np.uint8)
    crop[..., 0] = 255  # red
    emb = faces.embed([crop, crop])
    blob = faces._arcface.blob
    assert blob.shape == (2, 3, 112, 112)
    assert blob[0, 0].mean() == pytest.approx(1.0) and blob[0, 2].mean() == pytest.approx(-1.0)
    assert emb.shape == (2, 512)

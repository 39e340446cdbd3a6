"""Reference images: RGBA is composited on black in the one function every caller uses."""
import io

import numpy as np
import torch
from PIL import Image

from model.encoders import ImageEncoder, ImageEncoderConfig
from model.video_io import composite_on_black, load_image


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def _two_rgba_differing_only_where_transparent(rng):
    a = rng.integers(0, 256, (20, 30, 4), dtype=np.uint8)
    a[..., 3] = 0
    a[5:15, 8:22, 3] = rng.integers(1, 256, (10, 14), dtype=np.uint8)  # the masked subject
    b = a.copy()
    hidden = a[..., 3] == 0
    b[hidden, :3] = 255 - a[hidden, :3]
    return a, b


def test_rgba_differing_only_where_alpha_is_zero_gives_identical_encoder_input(tiny_checkpoints, tmp_path):
    a, b = _two_rgba_differing_only_where_transparent(np.random.default_rng(0))
    encoder = ImageEncoder(ImageEncoderConfig(kind="dinov2", spec=tiny_checkpoints["dinov2"], image_size=28))
    (tmp_path / "a.png").write_bytes(_png(a))
    inputs = [encoder.preprocess(load_image(src)[None]) for src in (tmp_path / "a.png", _png(b))]
    assert torch.equal(inputs[0], inputs[1])
    # The subject survives, scaled by its alpha.
    img = load_image(_png(a))
    alpha = torch.from_numpy(a[..., 3]).float() / 255
    assert torch.allclose(img, torch.from_numpy(a[..., :3]).permute(2, 0, 1).float() / 255 * alpha, atol=1e-6)


def test_composite_passes_rgb_through_and_batches():
    rgb = torch.rand(2, 3, 4, 5)
    assert composite_on_black(rgb) is rgb
    rgba = torch.rand(2, 4, 4, 5)
    assert composite_on_black(rgba).shape == (2, 3, 4, 5)

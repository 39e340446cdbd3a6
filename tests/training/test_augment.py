"""Table 4 operations at their bounds on calibrated images: the measured quantity reaches the
bound and not past it; geometric ops move the alpha with the pixels; `augment: off` works."""
import math

import numpy as np
import pytest
import torch

from training.augment import AugmentConfig, apply, augment, blur_kernel, draw_params

CFG = AugmentConfig()
IDENTITY = {"downscale": 1.0, "crop": (1.0, 0.0, 0.0), "flip": False, "rotation": 0.0, "shear": (0.0, 0.0),
            "blur": False, "hue": 0.0, "brightness": 1.0}


def params(**over):
    return IDENTITY | over


def bar_image(h=101, w=101, horizontal=True) -> torch.Tensor:
    """Opaque white bar through the center on a transparent background (RGBA)."""
    img = torch.zeros(4, h, w)
    if horizontal:
        img[:, h // 2 - 2 : h // 2 + 3, 10 : w - 10] = 1.0
    else:
        img[:, 10 : h - 10, w // 2 - 2 : w // 2 + 3] = 1.0
    return img


def principal_angle(mask: torch.Tensor) -> float:
    ys, xs = torch.nonzero(mask > 0.5, as_tuple=True)
    x, y = xs.float() - xs.float().mean(), -(ys.float() - ys.float().mean())
    cov = torch.stack([x, y]) @ torch.stack([x, y]).T
    vec = torch.linalg.eigh(cov).eigenvectors[:, -1]
    angle = math.degrees(math.atan2(vec[1], vec[0]))
    return (angle + 90) % 180 - 90


@pytest.mark.parametrize("angle", [20.0, -20.0])
def test_rotation_reaches_its_bound(angle):
    out = apply(bar_image(), params(rotation=angle))
    assert principal_angle(out[0]) == pytest.approx(-angle, abs=1.0)  # affine turns clockwise
    rng = np.random.default_rng(0)
    drawn = [draw_params(101, 101, CFG, rng)["rotation"] for _ in range(2000)]
    assert max(map(abs, drawn)) <= 20.0 and max(map(abs, drawn)) > 19.0


def test_x_shear_displaces_top_against_bottom_by_its_pixel_bound():
    h = w = 101
    out = apply(bar_image(h, w, horizontal=False), params(shear=(0.05, 0.0)))
    alpha = out[0] > 0.5
    center = lambda row: torch.nonzero(alpha[row]).float().mean()
    displacement = abs(float(center(15) - center(h - 16))) * (h - 1) / (h - 31)  # scale to full height
    assert displacement == pytest.approx(0.05 * w, abs=1.0)


def test_blur_width_follows_the_kernel_rule():
    h = w = 200  # kernel 200 / 50 = 4 -> 5 (odd)
    assert blur_kernel(h, w, 50) == 5 and blur_kernel(100, 120, 50) == 3 and blur_kernel(60, 60, 50) == 1
    img = torch.ones(4, h, w)
    img[:3, :, : w // 2] = 0.0  # a vertical step edge
    row = apply(img, params(blur=True))[0, h // 2]
    ramp = int(((row > 0.02) & (row < 0.98)).sum())
    assert 1 <= ramp <= blur_kernel(h, w, 50) - 1  # spread within the kernel, not past it


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_brightness_reaches_its_bound(factor):
    img = torch.full((4, 20, 20), 0.5)
    img[3] = 1.0
    assert float(apply(img, params(brightness=factor))[:3].mean()) == pytest.approx(0.5 * factor, abs=1e-4)
    drawn = [draw_params(20, 20, CFG, np.random.default_rng(i))["brightness"] for i in range(2000)]
    assert 0.9 <= min(drawn) < 0.905 and 1.095 < max(drawn) <= 1.1


def test_downscale_lower_bound_is_112_px_and_small_references_are_kept():
    rng = np.random.default_rng(0)
    lows = [draw_params(300, 224, CFG, rng)["downscale"] for _ in range(2000)]
    assert min(lows) >= 112 / 300 and min(lows) < 112 / 300 + 0.01
    out = apply(torch.ones(4, 300, 224), params(downscale=112 / 300))
    assert max(out.shape[-2:]) == 112
    assert all(draw_params(80, 60, CFG, rng)["downscale"] == 1.0 for _ in range(50))


def test_crop_scale_bound():
    out = apply(torch.ones(4, 90, 60), params(crop=(0.67, 0.5, 0.5)))
    assert out.shape[-2:] == (round(90 * 0.67), round(60 * 0.67))


def test_geometric_ops_move_alpha_with_pixels_and_transparent_stays_black():
    out = apply(bar_image(), params(rotation=15.0, shear=(0.05, -0.05), flip=True, brightness=1.1, hue=0.05))
    assert float(out[:, :5, :5].abs().max()) == 0.0  # corners were transparent: black after composite


def test_augment_off_is_only_the_composite():
    img = torch.rand(4, 30, 40)
    assert torch.equal(augment([img], None, np.random.default_rng(0))[0], img[:3] * img[3:])
    only = AugmentConfig(enabled=("brightness",))
    p = draw_params(30, 40, only, np.random.default_rng(0))
    assert {k: v for k, v in p.items() if k != "brightness"} == {k: v for k, v in IDENTITY.items() if k != "brightness"}


def one_by_one(x: torch.Tensor, p: dict) -> torch.Tensor:
    """Table 4's geometric operations as separate torchvision calls, one after another."""
    import math

    from torchvision.transforms.v2 import InterpolationMode
    from torchvision.transforms.v2 import functional as TF

    from training.augment import crop_window, downscale

    x = downscale(x, p["downscale"])
    top, left, h, w = crop_window(*x.shape[-2:], p["crop"])
    x = TF.crop_image(x, top, left, h, w)
    x = TF.horizontal_flip_image(x) if p["flip"] else x
    shear = [math.degrees(math.atan(p["shear"][0] * w / h)), math.degrees(math.atan(p["shear"][1] * h / w))]
    return TF.affine_image(x, angle=p["rotation"], translate=[0, 0], scale=1.0, shear=shear,
                           interpolation=InterpolationMode.BILINEAR)


def test_one_sampling_equals_torchvisions_operations_one_after_another():
    """Crop, flip, rotation and shear composed into one map give what torchvision's crop,
    flip and affine give in sequence, for images of different sizes augmented together."""
    from training.augment import geometric

    gen = torch.Generator().manual_seed(0)
    images = [torch.rand(4, h, w, generator=gen) for h, w in ((24, 24), (31, 17), (240, 200), (5, 9))]
    rng = np.random.default_rng(0)
    drawn = [draw_params(*x.shape[-2:], CFG, rng) for x in images]
    drawn[0]["flip"], drawn[1]["flip"] = True, False
    together, sizes = geometric(images, drawn)
    for i, (x, p) in enumerate(zip(images, drawn)):
        alone = one_by_one(x, p)
        assert sizes[i] == tuple(alone.shape[-2:])
        assert torch.allclose(together[i, :, : sizes[i][0], : sizes[i][1]], alone, atol=1e-4)


def test_references_augmented_together_equal_each_augmented_alone():
    """Hue and brightness of a batch equal torchvision's per-image calls (to float rounding, 2e-6:
    the hue shift is computed in fewer operations); a whole augmentation of a batch equals each
    image augmented alone (the shared sampling grid is normalised by the batch's largest image)."""
    from torchvision.transforms.v2 import functional as TF

    from training.augment import apply_all, hue_and_brightness, stack_padded

    gen = torch.Generator().manual_seed(0)
    images = [torch.rand(4, h, w, generator=gen) for h, w in ((24, 24), (31, 17), (240, 200), (5, 9))]
    images.append(torch.rand(1, 20, 20, generator=gen).expand(4, 20, 20))  # grey: no hue to shift
    images.append(torch.eye(12).expand(4, 12, 12) * torch.tensor([0.9, 0.9, 0.2, 1.0]).view(4, 1, 1))  # ties r = g
    rng = np.random.default_rng(0)
    drawn = [draw_params(*x.shape[-2:], CFG, rng) for x in images]
    drawn[1]["hue"] = 0.0  # an image without a hue shift keeps its pixels exactly
    drawn[2]["hue"], drawn[3]["hue"], drawn[0]["brightness"] = 0.05, -0.05, 1.1  # the bounds
    alone = [TF.adjust_brightness(TF.adjust_hue(x[:3], p["hue"]) if p["hue"] else x[:3], p["brightness"]).clamp(0, 1)
             for x, p in zip(images, drawn)]
    together = hue_and_brightness(stack_padded([x[:3] for x in images], 240, 200), drawn)
    batch = [together[i, :, : a.shape[-2], : a.shape[-1]] for i, a in enumerate(alone)]
    assert all(torch.allclose(a, b, atol=2e-6, rtol=0) for a, b in zip(alone, batch))
    assert torch.equal(batch[1], alone[1])
    assert all(torch.allclose(apply(x, p), y, atol=1e-4) for x, p, y in zip(images, drawn, apply_all(images, drawn)))


def test_decoded_uint8_references_augment_exactly_as_their_float_form():
    """References arrive as decoded uint8 and are converted once per batch: the same pixels as
    converting each image first, with and without a downscaled (large) reference in the batch."""
    gen = torch.Generator().manual_seed(1)
    small = [torch.randint(0, 256, (4, h, w), generator=gen, dtype=torch.uint8) for h, w in ((24, 24), (31, 17))]
    for images in (small, small + [torch.randint(0, 256, (4, 240, 200), generator=gen, dtype=torch.uint8)]):
        floats = [x.float() / 255.0 for x in images]
        assert all(torch.equal(a, b) for a, b in zip(augment(images, CFG, np.random.default_rng(3)),
                                                     augment(floats, CFG, np.random.default_rng(3))))
        assert all(torch.equal(a, b) for a, b in zip(augment(images, None, None), augment(floats, None, None)))

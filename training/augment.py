"""Reference augmentations (paper 3.3, A.3, Table 4) with torchvision.transforms.v2.

Geometric operations run on the RGBA reference (the mask moves with the pixels), then the
photometric ones on RGB, then the composite on black (model.video_io.composite_on_black).
Parameters are drawn first (`draw_params`, from the sample's keyed generator), then applied
(`apply`), so a test can apply any operation at its bound; a sample's references go through
`apply_all`, where the per-pixel operations (hue, brightness) run over all their pixels in
one pass, equal bit for bit to applying them image by image. Conversions from Table 4's units:

- downscale: factor in [min(1, 112 / max(h, w)), 1]: references already at most 112 px are
  not downscaled; the image is resized by the factor (bilinear, antialiased);
- Gaussian blur: kernel k = max(h, w) / 50 rounded to an odd integer (none below 3 px),
  sigma = 0.3 ((k - 1) / 2 - 1) + 0.8 (OpenCV's and torchvision's rule for a kernel size);
- colour jitter [-0.05, 0.05]: a hue shift, as a fraction of the hue circle (torchvision);
- brightness [0.9, 1.1]: a multiplicative factor;
- shear "[-0.05, 0.05] x w pixels" (x) and "x h" (y): the displacement of one image edge
  relative to the opposite one; as torchvision angles, atan(f w / h) for x and atan(f h / w) for y;
- rotation [-20, 20] degrees; horizontal flip with probability 0.5;
- random crop "scale [0.67, 1.0]": each side cropped to the fraction, at a random place.
Each operation is switchable (`AugmentConfig.enabled`), and `augment: off` switches all off.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from model.video_io import composite_on_black

OPERATIONS = ("downscale", "blur", "hue", "brightness", "flip", "shear", "rotation", "crop")


@dataclass(frozen=True)
class AugmentConfig:
    downscale_to: int = 112  # paper Table 4: scale in [112 / max(h, w), 1]
    blur_divisor: int = 50  # paper Table 4: kernel max(h, w) / 50
    hue: float = 0.05  # paper Table 4 colour jitter [-0.05, 0.05]
    brightness: tuple[float, float] = (0.9, 1.1)  # paper Table 4
    flip_prob: float = 0.5  # paper Table 4
    shear: float = 0.05  # paper Table 4: [-0.05, 0.05] x w (x) and x h (y) pixels
    rotation: float = 20.0  # paper Table 4, degrees
    crop: tuple[float, float] = (0.67, 1.0)  # paper Table 4
    enabled: tuple[str, ...] = field(default=OPERATIONS)


def blur_kernel(h: int, w: int, divisor: int) -> int:
    k = int(round(max(h, w) / divisor))
    k = k if k % 2 else k + 1
    return k if k >= 3 else 1


def blur_sigma(kernel: int) -> float:
    return 0.3 * ((kernel - 1) * 0.5 - 1) + 0.8


def draw_params(h: int, w: int, cfg: AugmentConfig, rng) -> dict:
    """Every operation's parameters for one (h, w) reference; disabled ones are identities."""
    u = lambda lo, hi: float(lo + (hi - lo) * rng.random())
    on = set(cfg.enabled)
    return {
        "downscale": u(min(1.0, cfg.downscale_to / max(h, w)), 1.0) if "downscale" in on else 1.0,
        "crop": (u(*cfg.crop), float(rng.random()), float(rng.random())) if "crop" in on else (1.0, 0.0, 0.0),
        "flip": bool(rng.random() < cfg.flip_prob) if "flip" in on else False,
        "rotation": u(-cfg.rotation, cfg.rotation) if "rotation" in on else 0.0,
        "shear": (u(-cfg.shear, cfg.shear), u(-cfg.shear, cfg.shear)) if "shear" in on else (0.0, 0.0),
        "blur": "blur" in on,
        "hue": u(-cfg.hue, cfg.hue) if "hue" in on else 0.0,
        "brightness": u(*cfg.brightness) if "brightness" in on else 1.0,
    }


def geometric(rgba: torch.Tensor, p: dict) -> torch.Tensor:  # (4, H, W) in [0, 1]
    h, w = rgba.shape[-2:]
    if p["downscale"] < 1.0:
        size = [max(1, round(h * p["downscale"])), max(1, round(w * p["downscale"]))]
        rgba = TF.resize_image(rgba, size, interpolation=v2.InterpolationMode.BILINEAR, antialias=True)
        h, w = size
    side, fy, fx = p["crop"]
    if side < 1.0:
        ch, cw = max(1, round(h * side)), max(1, round(w * side))
        rgba = TF.crop_image(rgba, int(fy * (h - ch)), int(fx * (w - cw)), ch, cw)
        h, w = ch, cw
    if p["flip"]:
        rgba = TF.horizontal_flip_image(rgba)
    sx, sy = p["shear"]
    shear = [math.degrees(math.atan(sx * w / h)), math.degrees(math.atan(sy * h / w))]
    if p["rotation"] or any(shear):
        rgba = TF.affine_image(rgba, angle=p["rotation"], translate=[0, 0], scale=1.0, shear=shear,
                         interpolation=v2.InterpolationMode.BILINEAR, fill=0.0)
    return rgba


def blur(rgb: torch.Tensor, p: dict, divisor: int) -> torch.Tensor:  # (3, H, W) in [0, 1]
    k = blur_kernel(*rgb.shape[-2:], divisor) if p["blur"] else 1
    return TF.gaussian_blur_image(rgb, kernel_size=[k, k], sigma=[blur_sigma(k)] * 2) if k > 1 else rgb


def per_pixel(values: list[float], sizes: list[int]) -> torch.Tensor:  # (N,) one value per pixel
    return torch.tensor(values, dtype=torch.float32).repeat_interleave(torch.tensor(sizes))


def hue_and_brightness(rgbs: list[torch.Tensor], params: list[dict]) -> list[torch.Tensor]:
    """Hue shift, brightness and the final clamp of several references in one pass: both are
    per-pixel operations, so all images' pixels go through as one (3, 1, N) row, each pixel
    with its own image's factors. torchvision's adjust_hue takes one factor per call; its
    RGB <-> HSV steps are used directly, and a test checks the result equals
    TF.adjust_hue / TF.adjust_brightness image by image, bit for bit."""
    from torchvision.transforms.v2.functional._color import _hsv_to_rgb, _rgb_to_hsv

    sizes = [r[0].numel() for r in rgbs]
    flat = torch.cat([r.reshape(3, 1, -1) for r in rgbs], dim=-1)  # (3, 1, N)
    hue = per_pixel([p["hue"] for p in params], sizes)  # (N,)
    if hue.any():
        h, s, v = _rgb_to_hsv(flat).unbind(dim=-3)  # each (1, N)
        h.add_(hue).remainder_(1.0)
        flat = torch.where(hue != 0, _hsv_to_rgb(torch.stack((h, s, v), dim=-3)), flat)  # hue 0: untouched
    flat = flat.mul(per_pixel([p["brightness"] for p in params], sizes)).clamp_(0, 1)
    return [x.reshape(r.shape) for x, r in zip(flat.split(sizes, dim=-1), rgbs)]


def apply_all(images: list[torch.Tensor], params: list[dict], cfg: AugmentConfig = AugmentConfig()) -> list[torch.Tensor]:
    """Each (4, H, W) RGBA in [0, 1] with its parameters -> (3, H', W') RGB composited on black."""
    if not images:
        return []
    shaped = [geometric(x, p) for x, p in zip(images, params)]
    rgbs = hue_and_brightness([blur(x[:3], p, cfg.blur_divisor) for x, p in zip(shaped, params)], params)
    return [composite_on_black(torch.cat([rgb, x[3:]], dim=0)) for rgb, x in zip(rgbs, shaped)]


def apply(rgba: torch.Tensor, p: dict, cfg: AugmentConfig = AugmentConfig()) -> torch.Tensor:
    """(4, H, W) RGBA in [0, 1] -> (3, H', W') RGB composited on black."""
    return apply_all([rgba], [p], cfg)[0]


def augment(images: list[torch.Tensor], cfg: AugmentConfig | None, rng) -> list[torch.Tensor]:
    """References (each (4, H, W)) with fresh Table 4 augmentations, drawn image after image;
    cfg None = augment off (composite only)."""
    if cfg is None:
        return [composite_on_black(x) for x in images]
    return apply_all(images, [draw_params(*x.shape[-2:], cfg, rng) for x in images], cfg)

"""Reference augmentations (paper 3.3, A.3, Table 4) with torchvision.transforms.v2.

Geometric operations run on the RGBA reference (the mask moves with the pixels), then the
photometric ones on RGB, then the composite on black (model.video_io.composite_on_black).
Parameters are drawn first (`draw_params`, from the sample's keyed generator), then applied
(`apply`), so a test can apply any operation at its bound. A sample's references go through
`apply_all` together: downscale and crop image by image, then flip, rotation and shear as
one bilinear sampling of the whole batch (each image's own map, composed from torchvision's
affine matrix), hue and brightness in one pass over the batch. Conversions from Table 4's units:

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

import functools
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from model.video_io import composite_on_black

IDENTITY_MAP = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]  # inverse_map without flip, rotation or shear
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


def unit(image: torch.Tensor) -> torch.Tensor:
    """uint8 (as decoded) -> float in [0, 1]; float images pass through."""
    return image.float() / 255.0 if image.dtype == torch.uint8 else image


def downscale(rgba: torch.Tensor, factor: float) -> torch.Tensor:  # (4, H, W) -> (4, H', W')
    if factor >= 1.0:
        return rgba
    h, w = rgba.shape[-2:]
    size = [max(1, round(h * factor)), max(1, round(w * factor))]
    return TF.resize_image(rgba, size, interpolation=v2.InterpolationMode.BILINEAR, antialias=True)


def crop_window(h: int, w: int, crop) -> tuple[int, int, int, int]:
    """(top, left, height, width): each side cropped to the drawn fraction, at the drawn place."""
    side, fy, fx = crop
    ch, cw = (max(1, round(h * side)), max(1, round(w * side))) if side < 1.0 else (h, w)
    return int(fy * (h - ch)), int(fx * (w - cw)), ch, cw


def inverse_map(h: int, w: int, p: dict) -> list[float]:
    """Flip, rotation and shear of an (h, w) image as one affine map [a, b, tx, c, d, ty] taking
    an output pixel's position to the input's, both relative to the image's center: the
    inverse rotation-shear matrix `TF.affine` builds, then the flip (x -> -x)."""
    from torchvision.transforms.v2.functional._geometry import _get_inverse_affine_matrix

    sx, sy = p["shear"]
    shear = [math.degrees(math.atan(sx * w / h)), math.degrees(math.atan(sy * h / w))]
    a, b, _, c, d, _ = _get_inverse_affine_matrix([0.0, 0.0], p["rotation"], [0.0, 0.0], 1.0, shear)
    flip = -1.0 if p["flip"] else 1.0
    return [flip * a, flip * b, 0.0, c, d, 0.0]


def stack_padded(images: list[torch.Tensor], h: int, w: int) -> torch.Tensor:  # -> (N, C, h, w)
    """Images of different sizes in one batch, each at the top left, zeros (transparent) around."""
    out = images[0].new_zeros(len(images), images[0].shape[0], h, w)
    for i, x in enumerate(images):
        out[i, :, : x.shape[-2], : x.shape[-1]] = x
    return out


@functools.lru_cache(maxsize=64)  # canvas sizes repeat: references come in few sizes
def pixel_grid(h: int, w: int) -> torch.Tensor:  # (1, h*w, 3): (x, y, 1) of each pixel's center
    """Pixel centers relative to the image's center (torchvision's affine grid); never written."""
    ys, xs = torch.meshgrid(torch.arange(h) + (1 - h) / 2, torch.arange(w) + (1 - w) / 2, indexing="ij")
    return torch.stack((xs, ys, torch.ones_like(xs)), dim=-1).reshape(1, h * w, 3)


def geometric(images: list[torch.Tensor], params: list[dict]) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """Each (4, H, W) RGBA (float in [0, 1], or uint8 as decoded) downscaled (antialiased) and
    cropped on its own, then flipped, rotated and sheared by one bilinear sampling of all images
    together: (N, 4, H', W') with image i in its top-left (h_i, w_i), transparent outside; the
    alpha moves with the pixels.
    Each map turns about its own image's center as `TF.affine_image` does (a test checks the
    result against torchvision's operations one after another)."""
    images = [downscale(unit(x), p["downscale"]) if p["downscale"] < 1.0 else x for x, p in zip(images, params)]
    images = [x[:, top : top + h, left : left + w] for x, p in zip(images, params)
              for top, left, h, w in [crop_window(*x.shape[-2:], p["crop"])]]
    if any(x.dtype != torch.uint8 for x in images):
        images = [unit(x) for x in images]
    sizes = [tuple(x.shape[-2:]) for x in images]
    hp, wp = max(h for h, _ in sizes), max(w for _, w in sizes)
    canvas = unit(stack_padded(images, hp, wp))  # uint8 images: one conversion for the batch
    maps = [inverse_map(h, w, p) for (h, w), p in zip(sizes, params)]
    if all(m == IDENTITY_MAP for m in maps):
        return canvas, sizes
    theta = []  # per image (3, 2): the padded canvas's centered pixel grid -> grid_sample's [-1, 1]
    for (h, w), (a, b, _, c, d, _) in zip(sizes, maps):
        dx, dy = (wp - w) / 2, (hp - h) / 2  # the canvas center, seen from the image's center
        tx, ty = a * dx + b * dy - dx, c * dx + d * dy - dy
        theta.append([[a * 2 / wp, c * 2 / hp], [b * 2 / wp, d * 2 / hp], [tx * 2 / wp, ty * 2 / hp]])
    grid = pixel_grid(hp, wp).to(canvas.dtype).matmul(torch.tensor(theta, dtype=canvas.dtype))
    grid = grid.reshape(len(images), hp, wp, 2)
    return F.grid_sample(canvas, grid, mode="bilinear", padding_mode="zeros", align_corners=False), sizes


def blur(rgb: torch.Tensor, p: dict, divisor: int) -> torch.Tensor:  # (3, H, W) in [0, 1]
    k = blur_kernel(*rgb.shape[-2:], divisor) if p["blur"] else 1
    return TF.gaussian_blur_image(rgb, kernel_size=[k, k], sigma=[blur_sigma(k)] * 2) if k > 1 else rgb


HSV_SECTORS = (5.0, 3.0, 1.0)  # per RGB channel: the sector offset of the HSV -> RGB formula


def hue_and_brightness(rgb: torch.Tensor, params: list[dict]) -> torch.Tensor:  # (N, 3, H, W)
    """Hue shift, brightness and the final clamp of a batch of references in one pass, each
    image with its own factors. The hue shift is torchvision's `adjust_hue` (RGB -> HSV with
    Pillow's sector rule, hue + factor modulo 1, back to RGB) in half its tensor operations:
    hue in sixths from the channel that is the maximum, back through the sector formula
    channel = V - C clamp(min(k, 4 - k), 0, 1), k = (sector + 6 hue) mod 6, with chroma
    C = max - min. A test checks it against TF.adjust_hue and TF.adjust_brightness image by
    image (equal to 2e-6; the operations differ in float rounding only)."""
    hue = torch.tensor([p["hue"] for p in params], dtype=rgb.dtype).view(-1, 1, 1, 1)
    if hue.any():
        minc, maxc = torch.aminmax(rgb, dim=-3, keepdim=True)  # each (N, 1, H, W)
        chroma = maxc - minc
        rc, gc, bc = ((maxc - rgb) / torch.where(chroma == 0, 1.0, chroma)).unbind(dim=-3)
        r, g, _ = rgb.unbind(dim=-3)
        top = maxc[:, 0]
        sixths = torch.where(top == r, bc - gc, torch.where(top == g, 2.0 + rc - bc, 4.0 + gc - rc))  # (N, H, W)
        k = (rgb.new_tensor(HSV_SECTORS).view(1, 3, 1, 1) + (sixths[:, None] + 6.0 * hue)).remainder_(6.0)
        shifted = maxc - chroma * torch.minimum(k, 4.0 - k).clamp_(0.0, 1.0)
        rgb = torch.where(hue != 0, shifted, rgb)  # hue 0: untouched
    brightness = torch.tensor([p["brightness"] for p in params], dtype=rgb.dtype).view(-1, 1, 1, 1)
    return rgb.mul(brightness).clamp_(0, 1)


def apply_all(images: list[torch.Tensor], params: list[dict], cfg: AugmentConfig = AugmentConfig()) -> list[torch.Tensor]:
    """Each (4, H, W) RGBA in [0, 1] with its parameters -> (3, H', W') RGB composited on black."""
    if not images:
        return []
    shaped, sizes = geometric(images, params)  # (N, 4, H, W)
    rgb = shaped[:, :3]
    for i, ((h, w), p) in enumerate(zip(sizes, params)):  # each image's own kernel, its own border
        if p["blur"] and blur_kernel(h, w, cfg.blur_divisor) > 1:
            rgb[i, :, :h, :w] = blur(rgb[i, :, :h, :w], p, cfg.blur_divisor)
    out = composite_on_black(torch.cat([hue_and_brightness(rgb, params), shaped[:, 3:]], dim=1))
    return [out[i, :, :h, :w] for i, (h, w) in enumerate(sizes)]


def apply(rgba: torch.Tensor, p: dict, cfg: AugmentConfig = AugmentConfig()) -> torch.Tensor:
    """(4, H, W) RGBA in [0, 1] -> (3, H', W') RGB composited on black."""
    return apply_all([rgba], [p], cfg)[0]


def augment(images: list[torch.Tensor], cfg: AugmentConfig | None, rng) -> list[torch.Tensor]:
    """References (each (4, H, W), float in [0, 1] or uint8) with fresh Table 4 augmentations,
    drawn image after image; cfg None = augment off (composite only)."""
    if cfg is None:
        return [composite_on_black(unit(x)) for x in images]
    return apply_all(images, [draw_params(*x.shape[-2:], cfg, rng) for x in images], cfg)

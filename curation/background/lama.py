"""LaMa (Suvorov et al. 2022, "Resolution-robust Large Mask Inpainting with Fourier
Convolutions"): a one-pass inpainter, the `lama` backend and the `fast` cost lever.

Checkpoint: big-lama (Apache-2.0), as the TorchScript file `big-lama.pt` that IOPaint
distributes; `model` is that file or a directory holding it. Its forward takes an RGB image
and a mask in [0, 1] at sizes divisible by 8 and returns the inpainted RGB in [0, 1].

`FFCResNetGenerator` below is big-lama's generator as its training config defines it (ngf 64,
3 downsamplings, 18 fast-Fourier-convolution blocks with 75% global channels): `alchemist cost`
counts it at real size, and tests script a tiny one into the same TorchScript format."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from curation.background.inpaint import blend

LAMA_FILE = "big-lama.pt"
PAD_MULTIPLE = 8  # three stride-2 downsamplings


# ---------------------------------------------------------------- the generator


class FourierUnit(nn.Module):
    """1x1 convolution in the frequency domain: a receptive field as large as the image."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(2 * channels, 2 * channels, 1, bias=False),
                                  nn.BatchNorm2d(2 * channels), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        f = torch.fft.rfft2(x, norm="ortho")  # (B, C, H, W/2+1) complex
        f = self.conv(torch.cat([f.real, f.imag], dim=1))  # (B, 2C, H, W/2+1)
        real, imag = f.chunk(2, dim=1)
        return torch.fft.irfft2(torch.complex(real, imag), s=(h, w), norm="ortho")


class SpectralTransform(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.down = nn.AvgPool2d(2) if stride == 2 else nn.Identity()
        self.conv1 = nn.Sequential(nn.Conv2d(cin, cout // 2, 1, bias=False), nn.BatchNorm2d(cout // 2),
                                   nn.ReLU(inplace=True))
        self.fu = FourierUnit(cout // 2)
        self.conv2 = nn.Conv2d(cout // 2, cout, 1, bias=False)

    def forward(self, x):
        x = self.conv1(self.down(x))
        return self.conv2(x + self.fu(x))


class FFC(nn.Module):
    """Local and global channel groups, each fed by both (Chi et al. 2020); conv + BN + act."""

    def __init__(self, cin: int, cout: int, kernel: int, ratio_in: float, ratio_out: float,
                 stride: int = 1, padding: int = 0, act: bool = True):
        super().__init__()
        gin, gout = int(cin * ratio_in), int(cout * ratio_out)
        lin, lout = cin - gin, cout - gout
        self.split = gin

        def conv(a, b):
            return nn.Conv2d(a, b, kernel, stride, padding, bias=False, padding_mode="reflect") if a and b else None

        self.l2l, self.l2g, self.g2l = conv(lin, lout), conv(lin, gout), conv(gin, lout)
        self.g2g = SpectralTransform(gin, gout, stride) if gin and gout else None
        self.post_l = nn.Sequential(nn.BatchNorm2d(lout), nn.ReLU(inplace=True) if act else nn.Identity()) if lout else None
        self.post_g = nn.Sequential(nn.BatchNorm2d(gout), nn.ReLU(inplace=True) if act else nn.Identity()) if gout else None

    def forward(self, x: tuple[torch.Tensor, torch.Tensor | None]):
        xl, xg = x
        out_l = sum(m(t) for m, t in ((self.l2l, xl), (self.g2l, xg)) if m is not None and t is not None)
        out_g = sum(m(t) for m, t in ((self.l2g, xl), (self.g2g, xg)) if m is not None and t is not None)
        return (self.post_l(out_l) if self.post_l else None, self.post_g(out_g) if self.post_g else None)


class FFCBlock(nn.Module):
    def __init__(self, channels: int, ratio: float):
        super().__init__()
        self.conv1 = FFC(channels, channels, 3, ratio, ratio, padding=1)
        self.conv2 = FFC(channels, channels, 3, ratio, ratio, padding=1)

    def forward(self, x):
        yl, yg = self.conv2(self.conv1(x))
        return x[0] + yl, x[1] + yg


class FFCResNetGenerator(nn.Module):
    """(B, 4, H, W) image + mask in [0, 1] -> (B, 3, H, W) in [0, 1]; H, W divisible by 8."""

    def __init__(self, ngf: int = 64, blocks: int = 18, ratio: float = 0.75, downsamplings: int = 3):
        super().__init__()
        self.stem = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(4, ngf, 7, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True))
        downs, c = [], ngf
        for i in range(downsamplings):
            last = i == downsamplings - 1
            downs.append(FFC(c, 2 * c, 3, 0.0, ratio if last else 0.0, stride=2, padding=1))
            c *= 2
        self.downs = nn.ModuleList(downs)
        self.blocks = nn.Sequential(*[FFCBlock(c, ratio) for _ in range(blocks)])
        ups = []
        for _ in range(downsamplings):
            ups += [nn.ConvTranspose2d(c, c // 2, 3, 2, 1, output_padding=1, bias=False), nn.BatchNorm2d(c // 2), nn.ReLU(True)]
            c //= 2
        self.head = nn.Sequential(*ups, nn.ReflectionPad2d(3), nn.Conv2d(c, 3, 7), nn.Sigmoid())

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = (self.stem(torch.cat([image * (1 - mask), mask], dim=1)), None)  # (B, ngf, H, W)
        for down in self.downs:
            x = down(x)
        xl, xg = self.blocks(x)
        return self.head(torch.cat([xl, xg], dim=1))  # (B, 3, H, W)


# ---------------------------------------------------------------- the backend


def lama_file(model: str) -> Path:
    path = Path(model)
    path = path / LAMA_FILE if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"LaMa checkpoint {path} not found; set background.lama_model to "
                                f"big-lama's TorchScript file ({LAMA_FILE}) or its directory")
    return path


@dataclass
class LamaInpainter:
    model: str = ""  # big-lama.pt or its directory
    device: str = "auto"
    _net: Any = field(default=None, init=False, repr=False)

    @property
    def id(self) -> str:
        return f"lama:{Path(self.model).name}"

    def load(self) -> None:
        if self._net is None:
            from model import model_registry

            self._dev = model_registry.device(self.device)
            self._net = torch.jit.load(str(lama_file(self.model)), map_location=self._dev).eval()

    def __call__(self, image, mask, prompt=None, negative_prompt=None, seed=0):
        if not mask.any():
            return image.copy()
        self.load()
        h, w = image.shape[:2]
        ph, pw = -h % PAD_MULTIPLE, -w % PAD_MULTIPLE
        img = np.pad(image, ((0, ph), (0, pw), (0, 0)), mode="reflect")
        msk = np.pad(mask, ((0, ph), (0, pw)), mode="reflect")
        x = torch.from_numpy(img).permute(2, 0, 1)[None].float().div(255).to(self._dev)  # (1, 3, H, W)
        m = torch.from_numpy(msk.astype(np.float32))[None, None].to(self._dev)  # (1, 1, H, W)
        with torch.no_grad():
            out = self._net(x, m)[0].permute(1, 2, 0).clamp(0, 1).mul(255).round().byte().cpu().numpy()
        return blend(image, out[:h, :w], mask)

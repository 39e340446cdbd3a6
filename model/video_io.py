"""Reading and writing video for the model: H.264 mp4 (PyAV), PNG strips, a video-folder reader.

Frames are uint8 arrays (F, H, W, 3); model tensors are float (3, F, H, W) in [-1, 1].
"""
from __future__ import annotations

import json
import os
import random
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from model.media import VIDEO_SUFFIXES, is_video_file


def to_uint8_frames(video: torch.Tensor) -> np.ndarray:
    """(3, F, H, W) in [-1, 1] -> (F, H, W, 3) uint8."""
    x = ((video.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(1, 2, 3, 0).cpu().numpy()


def to_tensor(frames: np.ndarray) -> torch.Tensor:
    """(F, H, W, 3) uint8 -> (3, F, H, W) float in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2).float() / 127.5 - 1


def write_mp4(frames: np.ndarray, path, fps: int = 24, metadata: dict | None = None) -> None:
    """H.264 / yuv420p mp4 (paper B.2: 24 fps), written to a temporary name and renamed."""
    import av

    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    with av.open(str(tmp), mode="w") as container:
        if metadata:
            container.metadata["comment"] = json.dumps(metadata)
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "18"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    os.replace(tmp, path)


def read_video(path, max_frames: int | None = None) -> np.ndarray:
    """All (or the first max_frames) frames of a video as (F, H, W, 3) uint8."""
    import av

    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if max_frames is not None and len(frames) >= max_frames:
                break
    if not frames:
        raise ValueError(f"{path}: no video frames")
    return np.stack(frames)


def write_strip(frames: np.ndarray, path) -> None:
    """All frames side by side in one PNG."""
    from PIL import Image

    Image.fromarray(np.concatenate(list(frames), axis=1)).save(path)


def composite_on_black(image: torch.Tensor) -> torch.Tensor:
    """(..., 4, H, W) RGBA in [0, 1] -> (..., 3, H, W) RGB composited on black; RGB passes through.

    Black is the colour the image encoder pads with, so a curated reference (the box crop with
    the segmentation mask as alpha) reaches the encoder as "masked on black": pixels where
    alpha is 0 leave no trace. The one place references lose their alpha: training (after
    augmentation), `alchemist sample` and the benchmarks all call it.
    """
    if image.shape[-3] == 3:
        return image
    if image.shape[-3] != 4:
        raise ValueError(f"expected 3 (RGB) or 4 (RGBA) channels, got {image.shape[-3]}")
    return image[..., :3, :, :] * image[..., 3:, :, :]


def load_image(source) -> torch.Tensor:
    """An image file path or encoded bytes (PNG) -> (3, H, W) float in [0, 1], alpha on black."""
    import io

    from PIL import Image

    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as img:
        has_alpha = img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info
        array = np.asarray(img.convert("RGBA" if has_alpha else "RGB"))
    return composite_on_black(torch.from_numpy(array.copy()).permute(2, 0, 1).float() / 255.0)


def resize_center_crop(video: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(3, F, H, W) -> (3, F, height, width): scale to cover, then crop the center."""
    _, _, h, w = video.shape
    scale = max(height / h, width / w)
    size = (max(height, round(h * scale)), max(width, round(w * scale)))
    video = F.interpolate(video.transpose(0, 1), size=size, mode="bilinear", antialias=True, align_corners=False)
    top, left = (size[0] - height) // 2, (size[1] - width) // 2
    return video[:, :, top : top + height, left : left + width].transpose(0, 1).contiguous()


class VideoFolderClips(torch.utils.data.IterableDataset):
    """Random clips of `frames` consecutive frames, resized and center-cropped, from a folder.

    The small reader behind `alchemist train-vae`; the curated-table reader comes with the
    DiT training work. Videos shorter than a clip are skipped.
    """

    def __init__(self, root, frames: int, height: int, width: int, seed: int = 0):
        self.paths = sorted(p for p in Path(root).rglob("*") if is_video_file(p))
        if not self.paths:
            raise ValueError(f"no videos ({', '.join(VIDEO_SUFFIXES)}) under {root}")
        self.frames, self.height, self.width, self.seed = frames, height, width, seed

    def clip(self, path, rng: random.Random) -> torch.Tensor | None:
        video = read_video(path)
        if len(video) < self.frames:
            return None
        start = rng.randrange(len(video) - self.frames + 1)
        clip = to_tensor(video[start : start + self.frames])  # (3, F, H, W)
        return resize_center_crop(clip, self.height, self.width)

    def __iter__(self):
        rng = random.Random(self.seed)
        while True:
            clips = (self.clip(p, rng) for p in rng.sample(self.paths, len(self.paths)))
            found = False
            for clip in clips:
                if clip is not None:
                    found = True
                    yield clip
            if not found:
                raise ValueError(f"every video is shorter than {self.frames} frames")

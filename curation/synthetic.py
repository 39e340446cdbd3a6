"""Seeded synthetic videos for demos and tests, built at run time from packaged media.

Every generator is a pure function of its arguments (numpy `default_rng(seed)`), returns
frames as a `(F, H, W, 3)` uint8 array, and never touches the network: photos and textures
come from scikit-image's bundled `skimage.data` images. `write_video` encodes them with PyAV
as H.264 / yuv420p, the format a real corpus mostly holds.

    frames, masks = moving_object_clip(seed=0)      # one red ball over a static brick floor
    write_video(frames, "ball.mp4", fps=24)
    frames, cut = hard_cut_clip(seed=1)             # two scenes, first frame of scene 2 = cut
    frames = fast_motion_clip(seed=2)               # one continuous shot, fast camera + object
    frames = pan_over_photo(skimage.data.coffee())  # a still photo panned: no real motion
"""
from __future__ import annotations

import importlib.util
from fractions import Fraction
from pathlib import Path
from typing import Iterable

import av
import cv2
import numpy as np

DEFAULT_FPS = 24  # our choice: the common frame rate of web video
DEFAULT_HW = (192, 256)  # our choice: small enough that a demo clip decodes in milliseconds
CRF = 18  # our choice: visually lossless, so filters see the content, not coding artefacts

# Bundled scikit-image photos (no pooch download needed) used as "scenes".
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry")
TEXTURES = ("brick", "grass", "gravel")


# --- I/O -------------------------------------------------------------------------------------


def write_video(frames: np.ndarray | Iterable[np.ndarray], path: str | Path,
                fps: float = DEFAULT_FPS, crf: int = CRF, faststart: bool = False,
                gop: int | None = None, x264_params: str | None = None) -> Path:
    """Encode RGB uint8 frames `(F, H, W, 3)` as H.264 yuv420p; returns the path.

    Height and width must be even (yuv420p subsamples chroma 2x2). Single-threaded x264 so the
    same frames give the same bytes. `faststart` puts the MP4 index before the data, as web
    video does (a truncated faststart file still opens; the index points past its end).
    `gop` fixes the keyframe interval (scene-cut keyframes off), for tests of seeking.
    `x264_params` passes extra x264 settings (e.g. "mbtree=0": measured here, x264's
    macroblock tree makes the bytes differ between runs even on one thread).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = Fraction(fps).limit_denominator(1001)
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), mode="w", options=options) as container:
        stream = None
        for i, frame in enumerate(frames):
            frame = np.ascontiguousarray(frame, dtype=np.uint8)
            if stream is None:
                h, w = frame.shape[:2]
                if h % 2 or w % 2:
                    raise ValueError(f"frame size {w}x{h} must be even for yuv420p; crop or pad it")
                stream = container.add_stream("libx264", rate=rate)
                stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
                stream.codec_context.thread_count = 1
                stream.options = {"crf": str(crf), "preset": "veryfast", "threads": "1"}
                if x264_params:
                    stream.options = {**stream.options, "x264-params": x264_params}
                if gop is not None:
                    stream.codec_context.gop_size = gop
                    stream.options = {**stream.options, "sc_threshold": "0"}
            video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
            video_frame.pts = i
            video_frame.time_base = 1 / rate
            for packet in stream.encode(video_frame):
                container.mux(packet)
        if stream is None:
            raise ValueError("no frames to write")
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def read_frames(path: str | Path) -> np.ndarray:
    """Decode every frame of a (small) video as `(F, H, W, 3)` uint8 RGB."""
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def save_masks(masks: np.ndarray, path: str | Path, **meta: object) -> Path:
    """Ground-truth masks `(F, H, W)` bool as a compressed .npz (key `masks`, plus `meta`)."""
    path = Path(path)
    np.savez_compressed(path, masks=np.asarray(masks, dtype=bool), **meta)
    return path


# --- Index-coded frames ------------------------------------------------------------------------

CODE_BITS = 8  # frames 0..255 carry their index


def index_coded_frames(n: int, hw: tuple[int, int] = (64, 128), bits: int = CODE_BITS) -> np.ndarray:
    """`(n, H, W, 3)` frames whose index is drawn as a bar code: column b is white when bit b
    is set. The code survives H.264 and downscaling, so a decoded frame says which one it is."""
    h, w = hw
    col = w // bits
    frames = np.zeros((n, h, w, 3), np.uint8)
    for i in range(n):
        for b in range(bits):
            if (i >> b) & 1:
                frames[i, :, b * col:(b + 1) * col] = 255
    return frames


def read_index_code(frame: np.ndarray, bits: int = CODE_BITS) -> int:
    """The index an index-coded frame carries (read at each column's centre)."""
    h, w = frame.shape[:2]
    row = frame[h // 2, :, :].mean(axis=1)
    centres = ((np.arange(bits) + 0.5) * w / bits).astype(int)
    return int(sum(1 << b for b, x in enumerate(centres) if row[x] > 127))


# --- Sources: photos and textures -------------------------------------------------------------


_PHOTO_FILES = {"immunohistochemistry": "ihc.png", "rocket": "rocket.jpg",
                "hubble_deep_field": "hubble_deep_field.jpg"}


def photo(name: str) -> np.ndarray:
    """A bundled scikit-image photo as RGB uint8 (`astronaut`, `coffee`, `chelsea`, ...).

    Read straight from scikit-image's data folder: importing `skimage.data` pulls in SciPy
    and costs seconds per process.
    """
    image = None
    spec = importlib.util.find_spec("skimage")
    if spec and spec.submodule_search_locations:
        file = Path(spec.submodule_search_locations[0]) / "data" / _PHOTO_FILES.get(
            name, f"{name}.png")
        if file.is_file():
            image = cv2.imread(str(file), cv2.IMREAD_UNCHANGED)
            if image is not None and image.ndim == 3:
                image = cv2.cvtColor(image[..., :3], cv2.COLOR_BGR2RGB)
    if image is None:
        import skimage.data

        image = getattr(skimage.data, name)()
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return np.ascontiguousarray(image[..., :3], dtype=np.uint8)


def texture(name: str = "brick", tint: tuple[int, int, int] = (190, 140, 100)) -> np.ndarray:
    """A bundled grey scikit-image texture (`brick`, `grass`, `gravel`) tinted to RGB uint8."""
    grey = photo(name)[..., 0].astype(np.float32) / 255.0
    rgb = grey[..., None] * np.asarray(tint, dtype=np.float32)[None, None, :] * 1.25
    return np.clip(rgb, 0, 255).astype(np.uint8)


def cover_crop(image: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Resize `image` so it covers `hw` (keeping aspect), then centre-crop to exactly `hw`."""
    h, w = hw
    scale = max(h / image.shape[0], w / image.shape[1])
    size = (max(w, round(image.shape[1] * scale)), max(h, round(image.shape[0] * scale)))
    resized = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    y0, x0 = (resized.shape[0] - h) // 2, (resized.shape[1] - w) // 2
    return resized[y0:y0 + h, x0:x0 + w]


def _crop(image: np.ndarray, cy: float, cx: float, ch: float, cw: float,
          hw: tuple[int, int]) -> np.ndarray:
    """The window of size (ch, cw) centred at (cy, cx), resampled to `hw` (sub-pixel exact)."""
    h, w = hw
    sx, sy = cw / w, ch / h
    # Affine map from output pixel centres to source coordinates.
    m = np.float32([[sx, 0, cx - cw / 2 + sx / 2 - 0.5], [0, sy, cy - ch / 2 + sy / 2 - 0.5]])
    return cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REFLECT)


# --- Generators ------------------------------------------------------------------------------


def pan_over_photo(image: np.ndarray, n_frames: int = 60, hw: tuple[int, int] = DEFAULT_HW,
                   mode: str = "pan", seed: int = 0) -> np.ndarray:
    """A still photo filmed by a moving camera: a window sliding (`pan`) or shrinking (`zoom`).

    Every pixel moves by one global transform, so the clip has camera motion but nothing in
    the scene moves: the motion filter must reject it (paper 3.1, "little or no motion").
    """
    rng = np.random.default_rng(seed)
    H, W = image.shape[:2]
    h, w = hw
    t = np.linspace(0.0, 1.0, n_frames)
    if mode == "pan":
        # A window 70% of the photo's size (same aspect as hw) travelling across it.
        ch = min(H * 0.7, W * 0.7 * h / w)
        cw = ch * w / h
        sign = rng.choice([-1.0, 1.0], size=2)
        cx = W / 2 + sign[0] * (t - 0.5) * (W - cw) * 0.9
        cy = H / 2 + sign[1] * (t - 0.5) * (H - ch) * 0.5
        windows = [(cy[i], cx[i], ch, cw) for i in range(n_frames)]
    elif mode == "zoom":
        ch0 = min(H * 0.95, W * 0.95 * h / w)
        scales = 1.0 - 0.4 * t  # zoom in to 60% of the first window
        windows = [(H / 2, W / 2, ch0 * s, ch0 * s * w / h) for s in scales]
    else:
        raise ValueError(f"mode must be 'pan' or 'zoom', got {mode!r}")
    return np.stack([_crop(image, *win, hw) for win in windows])


def static_clip(image: np.ndarray, n_frames: int = 48,
                hw: tuple[int, int] = DEFAULT_HW) -> np.ndarray:
    """A photo held still for `n_frames`: no motion at all."""
    frame = cover_crop(image, hw)
    return np.repeat(frame[None], n_frames, axis=0)


def _ball(hw: tuple[int, int], cy: float, cx: float, r: float, angle: float,
          color: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A shaded ball with a stripe that turns with `angle` (so it visibly rolls): rgb, alpha."""
    h, w = hw
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dy, dx = (yy - cy) / r, (xx - cx) / r
    d2 = dx * dx + dy * dy
    inside = d2 <= 1.0
    # Lambert shading from a light at the upper left; a dark band across the ball.
    nz = np.sqrt(np.clip(1.0 - d2, 0.0, 1.0))
    shade = np.clip(0.35 + 0.65 * (-0.4 * dx - 0.5 * dy + 0.77 * nz), 0.15, 1.0)
    band = np.abs(np.cos(angle) * dx + np.sin(angle) * dy) < 0.18
    rgb = shade[..., None] * np.asarray(color, dtype=np.float32)
    rgb[band] *= 0.35
    return rgb, inside


def moving_object_clip(seed: int = 0, n_frames: int = 60, hw: tuple[int, int] = DEFAULT_HW,
                       background: str = "brick", color: tuple[int, int, int] = (215, 30, 25),
                       radius: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One ball rolling across a static textured floor; returns `(frames, masks)`.

    `masks[i]` (bool, `(H, W)`) is the exact ball region in frame i: ground truth for the
    segmentation stage's IoU. The camera never moves, so all motion is the object's.
    """
    rng = np.random.default_rng(seed)
    h, w = hw
    floor = cover_crop(texture(background), hw).astype(np.float32)
    r = radius if radius is not None else min(h, w) * rng.uniform(0.14, 0.18)
    x0, x1 = (r + 4, w - r - 4) if rng.random() < 0.5 else (w - r - 4, r + 4)
    y_mid = h * rng.uniform(0.45, 0.6)
    frames = np.empty((n_frames, h, w, 3), np.uint8)
    masks = np.empty((n_frames, h, w), bool)
    for i, t in enumerate(np.linspace(0.0, 1.0, n_frames)):
        cx = x0 + (x1 - x0) * t
        cy = y_mid - 0.12 * h * np.sin(np.pi * t)  # a shallow arc
        angle = (cx - x0) / r  # rolling without slipping
        rgb, inside = _ball(hw, cy, cx, r, angle, color)
        frame = floor.copy()
        frame[inside] = rgb[inside]
        frames[i], masks[i] = np.clip(frame, 0, 255).astype(np.uint8), inside
    return frames, masks


def hard_cut_clip(seed: int = 0, n_frames: int = 48, cut_at: int | None = None,
                  hw: tuple[int, int] = DEFAULT_HW) -> tuple[np.ndarray, int]:
    """Two different scenes joined by a hard cut; returns `(frames, cut_at)`.

    Frames `[0, cut_at)` pan slowly over one photo, `[cut_at, F)` over another, different one,
    so the shot detector has exactly one boundary to find at a known frame.
    """
    rng = np.random.default_rng(seed)
    cut_at = n_frames // 2 if cut_at is None else cut_at
    if not 0 < cut_at < n_frames:
        raise ValueError(f"cut_at must be inside (0, {n_frames}), got {cut_at}")
    first, second = rng.choice(len(PHOTOS), size=2, replace=False)
    a = pan_over_photo(photo(PHOTOS[first]), n_frames, hw, seed=int(rng.integers(1 << 31)))
    b = pan_over_photo(photo(PHOTOS[second]), n_frames, hw, seed=int(rng.integers(1 << 31)))
    # Each scene is a gentle pan (~1-2 px per frame), so the cut is the only abrupt change.
    return np.concatenate([a[:cut_at], b[cut_at:]]), cut_at


def fast_motion_clip(seed: int = 0, n_frames: int = 48, hw: tuple[int, int] = DEFAULT_HW,
                     pixels_per_frame: float = 10.0) -> np.ndarray:
    """One continuous shot with a fast camera pan and a fast object: no cut anywhere.

    A shot detector that mistakes fast motion for a boundary fails on this clip.
    """
    rng = np.random.default_rng(seed)
    h, w = hw
    image = photo(PHOTOS[int(rng.integers(len(PHOTOS)))])
    # Scale the photo so the pan can run `pixels_per_frame` for the whole clip.
    need_w = w + pixels_per_frame * n_frames + 8
    scale = max(need_w / image.shape[1], (h + 8) / image.shape[0], 1.0)
    big = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)),
                     interpolation=cv2.INTER_LINEAR)
    direction = rng.choice([-1.0, 1.0])
    start_x = big.shape[1] / 2 - direction * pixels_per_frame * n_frames / 2
    cy = big.shape[0] / 2
    r = min(h, w) * 0.12
    frames = np.empty((n_frames, h, w, 3), np.uint8)
    for i in range(n_frames):
        cx = start_x + direction * pixels_per_frame * i
        frame = _crop(big, cy, cx, h, w, hw).astype(np.float32)
        # The object crosses the frame against the pan, twice the camera's speed.
        ox = (w * 0.1 + (2 * pixels_per_frame * i)) % (w * 0.8) + w * 0.1
        oy = h * 0.5 + h * 0.2 * np.sin(i / 4.0)
        rgb, inside = _ball(hw, oy, ox, r, ox / r, (40, 90, 220))
        frame[inside] = rgb[inside]
        frames[i] = np.clip(frame, 0, 255).astype(np.uint8)
    return frames

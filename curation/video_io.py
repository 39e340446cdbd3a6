"""Video decoding on PyAV: decode a clip range, sample frames by timestamp.

Two access patterns cover the curation stages:

  decode_clip   every frame of [start_s, end_s), seeking to start_s and stopping after end_s,
                scaled to `size` by libswscale while converting from the decoder's YUV (never
                a full-resolution RGB array in numpy), optionally subsampled to `fps`.
  frames_at     the frame nearest to each of a few times, by seeking to the keyframe before
                each time and decoding forward only as far as needed; a seek that would go
                back over frames already decoded is skipped (a one-keyframe file is decoded
                at most once, never once per time).

Times are seconds from the video stream's first presentation timestamp (`stream.start_time`),
the origin players and `ffmpeg -ss` use, and the one clip keys and manifests are written in.
A frame "at" time t is the frame whose presentation timestamp is t; a clip [start_s, end_s)
holds the frames with start_s <= pts < end_s, up to TIME_TOL_S (clip keys round to ms).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import av
import numpy as np

TIME_TOL_S = 1e-3  # clip bounds are ms-rounded; frames are >= 4 ms apart even at 240 fps
SEEK_BACKOFF_S = (0.0, 1.0, 5.0)  # retry seeks this much earlier when the demuxer overshoots
_TIE_S = 1e-9  # a target halfway between two frames (up to float error) takes the earlier one
DEFAULT_INTERPOLATION = "BICUBIC"  # ffmpeg's own default scaler (what `ffmpeg -s WxH` uses)


class FrameDecodeError(RuntimeError):
    """No frame could be decoded where one was asked for."""


@dataclass
class DecodeStats:
    """What a sampler did: for tests and the benchmark, not for decisions."""

    frames_decoded: int = 0
    seeks: int = 0


# --- Opening and timing ----------------------------------------------------------------------


def open_video(path: str | Path, threads: str = "AUTO") -> tuple[av.container.InputContainer, av.VideoStream]:
    """The container and its first video stream, with threaded decoding."""
    container = av.open(str(path))
    if not container.streams.video:
        container.close()
        raise FrameDecodeError(f"{path} has no video stream")
    stream = container.streams.video[0]
    stream.thread_type = threads
    stream.thread_count = decode_threads()
    return container, stream


def decode_threads() -> int:
    """FFmpeg decoding threads: $OMP_NUM_THREADS where set (Ray sets it to the CPUs it grants a
    worker, so two 1-CPU actors do not each decode on every core), else 0 = one per core."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() else 0


class _Clock:
    """Frame -> seconds from the stream start; frames without a pts continue the last one."""

    def __init__(self, stream: av.VideoStream):
        self.time_base = float(stream.time_base)
        self.origin = stream.start_time or 0
        rate = stream.average_rate or stream.guessed_rate
        self.step = 1.0 / float(rate) if rate else 0.04  # 25 fps when the stream does not say
        self.last: float | None = None

    def __call__(self, frame: av.VideoFrame) -> float:
        if frame.pts is not None:
            t = (frame.pts - self.origin) * self.time_base
        else:
            t = 0.0 if self.last is None else self.last + self.step
        self.last = t
        return t

    def pts(self, seconds: float) -> int:
        return self.origin + int(math.floor(seconds / self.time_base))


def _decode_from(container, stream, clock: _Clock, target_s: float) -> Iterator[tuple[av.VideoFrame, float]]:
    """(frame, seconds) from the keyframe at or before `target_s` onwards.

    Seeks backward to a keyframe; when the demuxer lands after the target anyway (a sparse or
    broken index), retries from further back and finally from the start of the stream.
    """
    backoffs = [b for b in SEEK_BACKOFF_S if target_s - b > 0] + [None]  # None: stream start
    for back in backoffs:
        # The start itself: pts 0 lies at or before the first frame (MPEG-TS lands on the next
        # keyframe when asked for exactly its start_time).
        container.seek(clock.pts(target_s - back) if back is not None else min(clock.origin, 0),
                       stream=stream, backward=True)
        clock.last = None
        frames = container.decode(stream)
        first = next(frames, None)
        if first is None:
            if back is None:
                return
            continue
        t0 = clock(first)
        if t0 <= target_s + TIME_TOL_S or back is None:
            yield first, t0
            for frame in frames:
                yield frame, clock(frame)
            return


def _to_rgb(frame: av.VideoFrame, size: tuple[int, int] | None, interpolation: str) -> np.ndarray:
    """RGB uint8 (H, W, 3), scaled by libswscale in the same pass as the YUV->RGB conversion.
    libswscale's threads follow the decoder's: its default (one per core) starts a thread pool
    per frame, which costs more than it saves on small frames and lets a 1-CPU Ray actor use
    every core."""
    threads = decode_threads()
    if size is None:
        return frame.to_ndarray(format="rgb24", threads=threads)
    width, height = size
    return frame.to_ndarray(format="rgb24", width=width, height=height, interpolation=interpolation,
                            threads=threads)


def fit_size(width: int, height: int, max_side: int | None) -> tuple[int, int] | None:
    """(W, H) with the longer side at most `max_side`, aspect kept, both even; None: unchanged."""
    if max_side is None or max(width, height) <= max_side:
        return None
    scale = max_side / max(width, height)
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


# --- Clip decoding ---------------------------------------------------------------------------


def decode_clip(path: str | Path, start_s: float = 0.0, end_s: float | None = None,
                size: tuple[int, int] | None = None, fps: float | None = None,
                interpolation: str = DEFAULT_INTERPOLATION) -> tuple[np.ndarray, np.ndarray]:
    """Frames of [start_s, end_s) as `(T, H, W, 3)` uint8 RGB and their times `(T,)` in seconds.

    `size=(W, H)` scales in the decoder's conversion step; `fps` keeps at most one frame per
    1/fps seconds (the first frame at or after each grid time, like ffmpeg's fps filter), and
    frames that are skipped are never converted. `end_s=None` decodes to the end of the stream.
    The whole clip is held in memory: for long clips iterate `iter_clip` instead.
    """
    frames, times = [], []
    stream_hw: list[tuple[int, int]] = []
    for frame, t in iter_clip(path, start_s, end_s, size, fps, interpolation, stream_hw):
        frames.append(frame)
        times.append(t)
    if not frames:
        height, width = stream_hw[0] if stream_hw else (0, 0)
        shape = (0, size[1], size[0], 3) if size else (0, height, width, 3)
        return np.zeros(shape, np.uint8), np.zeros(0, np.float64)
    return np.stack(frames), np.asarray(times, np.float64)


def iter_clip(path: str | Path, start_s: float = 0.0, end_s: float | None = None,
              size: tuple[int, int] | None = None, fps: float | None = None,
              interpolation: str = DEFAULT_INTERPOLATION,
              stream_hw: list | None = None) -> Iterator[tuple[np.ndarray, float]]:
    """`decode_clip`'s frames one at a time, `(H, W, 3)` uint8 RGB and seconds: memory does
    not grow with the clip's length. `stream_hw`, when given, receives the stream's (H, W)."""
    container, stream = open_video(path)
    if stream_hw is not None:
        stream_hw.append((stream.height, stream.width))
    clock = _Clock(stream)
    step = 1.0 / fps if fps else 0.0
    next_t = start_s
    try:
        for frame, t in _decode_from(container, stream, clock, max(start_s, 0.0)):
            if t < start_s - TIME_TOL_S:
                continue
            if end_s is not None and t >= end_s - TIME_TOL_S:
                break
            if step and t < next_t - TIME_TOL_S:
                continue
            yield _to_rgb(frame, size, interpolation), t
            while step and next_t <= t + TIME_TOL_S:
                next_t += step
    finally:
        container.close()


# --- Frame sampling by timestamp -------------------------------------------------------------


class FrameSampler:
    """Nearest frames to given times from one open container, seeking instead of decoding all.

    Times are served in any order. A later time continues the current decode instead of
    seeking when the seek would land on a keyframe at or before where we already are (looked
    up in the demuxer's index; without an index, when the gap is at most `max_forward_s`), so
    a video with one keyframe is never decoded twice.

        with FrameSampler("v.mp4") as sampler:
            frame, pts_s = sampler.nearest(1.5)
    """

    def __init__(self, path: str | Path, size: tuple[int, int] | None = None,
                 max_side: int | None = None, max_forward_s: float = 1.0,
                 interpolation: str = DEFAULT_INTERPOLATION):
        self.path = str(path)
        self.container, self.stream = open_video(path)
        self.clock = _Clock(self.stream)
        self.size = size or fit_size(self.stream.width, self.stream.height, max_side)
        self.max_forward_s = max_forward_s
        self.interpolation = interpolation
        self.stats = DecodeStats()
        self._frames: Iterator[tuple[av.VideoFrame, float]] | None = None
        self._prev: tuple[av.VideoFrame, float] | None = None  # last frame before the cursor
        self._next: tuple[av.VideoFrame, float] | None = None  # first frame at/after it; None: EOF

    def __enter__(self) -> "FrameSampler":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._frames = self._prev = self._next = None
        self.container.close()

    def nearest(self, target_s: float) -> tuple[np.ndarray, float]:
        """The decoded frame whose timestamp is nearest `target_s` (the earlier one on a tie)."""
        if not self._can_continue(target_s):
            self._seek(target_s)
        while self._next is not None and self._next[1] < target_s - TIME_TOL_S:
            self._prev, self._next = self._next, self._pull()
        before, after = self._prev, self._next
        if before is None and after is None:
            raise FrameDecodeError(f"no decodable frame near {target_s:.3f}s in {self.path}")
        if after is None or (before is not None and
                             target_s - before[1] <= after[1] - target_s + _TIE_S):
            frame, t = before
        else:
            frame, t = after
        return _to_rgb(frame, self.size, self.interpolation), t

    def _can_continue(self, target_s: float) -> bool:
        """Whether decoding on from the current position beats seeking to reach `target_s`."""
        held = self._prev or self._next  # the earliest frame we still hold
        if self._frames is None or held is None or target_s < held[1] - TIME_TOL_S:
            return False  # nothing open, stream exhausted before anything, or target behind us
        if self._next is None:
            return True  # at the end of the stream: the last frame is the nearest
        landing = self._keyframe_before(target_s)
        if landing is not None:  # a seek would restart there: only worth it past our position
            return landing <= self._next[1] + TIME_TOL_S
        return target_s - self._next[1] <= self.max_forward_s  # no index: guess by distance

    def _keyframe_before(self, target_s: float) -> float | None:
        """Time of the last indexed keyframe at or before `target_s`, from the demuxer's index
        (MP4/MOV sample tables, Matroska cues); None when the index does not reach that far.

        Index timestamps are decode times, at most a few frames before presentation times,
        which only makes the estimate err towards continuing to decode.
        """
        entries = self.stream.index_entries
        n = len(entries)
        target = self.clock.pts(target_s + TIME_TOL_S)
        if n == 0 or entries[n - 1].timestamp < target:
            return None
        lo, hi = 0, n  # first entry after the target (entries are in decode order)
        while lo < hi:
            mid = (lo + hi) // 2
            if entries[mid].timestamp <= target:
                lo = mid + 1
            else:
                hi = mid
        i = lo - 1
        while i >= 0 and not entries[i].is_keyframe:  # back over at most one GOP
            i -= 1
        ts = entries[i].timestamp if i >= 0 else self.clock.origin
        return (ts - self.clock.origin) * self.clock.time_base

    def _seek(self, target_s: float) -> None:
        self.stats.seeks += 1
        self._frames = _decode_from(self.container, self.stream, self.clock, max(target_s, 0.0))
        self._prev, self._next = None, self._pull()

    def _pull(self) -> tuple[av.VideoFrame, float] | None:
        item = next(self._frames, None)
        if item is not None:
            self.stats.frames_decoded += 1
        return item


def frames_at(path: str | Path, times_s: Sequence[float], size: tuple[int, int] | None = None,
              max_side: int | None = None) -> list[tuple[np.ndarray, float]]:
    """For each time (seconds), the nearest decoded frame `(H, W, 3)` uint8 RGB and its pts.

    One open container serves all times, visited in time order (so 5/50/95% of a clip cost at
    most three seeks and never a full decode); results come back in the order asked.
    Raises FrameDecodeError when the stream yields no frame at all near a time.
    """
    order = sorted(range(len(times_s)), key=lambda i: times_s[i])
    out: list[tuple[np.ndarray, float] | None] = [None] * len(times_s)
    with FrameSampler(path, size=size, max_side=max_side) as sampler:
        for i in order:
            out[i] = sampler.nearest(float(times_s[i]))
    return out  # type: ignore[return-value]

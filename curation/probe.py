"""Probing a video with PyAV: what ingest needs to know before a clip becomes a candidate.

`probe_video` opens a local file or URL under a timeout, finds the first real video stream,
reads duration, frame rate, size and codec, decodes the first frame and checks that the data
reaches the end of the video (so a truncated file is caught here, not by a later stage). Any
failure is a `Rejected` carrying the rejection reason ingest records.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any

import av

from curation.errors import Rejected
from model.media import is_url

# Leading bytes of video containers: a file that starts like one but will not open is a
# broken video (`unreadable_video`), anything else is `not_a_video`.
_CONTAINER_MAGIC = (
    (4, b"ftyp"), (4, b"moov"), (4, b"mdat"), (4, b"free"), (4, b"wide"), (4, b"skip"),  # MP4/MOV
    (0, b"\x1a\x45\xdf\xa3"),  # Matroska / WebM
    (0, b"RIFF"),  # AVI
    (0, b"FLV"),
    (0, b"OggS"),
    (0, b"\x00\x00\x01\xba"), (0, b"\x00\x00\x01\xb3"),  # MPEG-PS / MPEG-1 video
    (0, b"\x30\x26\xb2\x75"),  # ASF / WMV
)
_MAX_PROBE_PACKETS = 600  # our choice: a first frame needs at most a few GOPs of packets
_MAX_TAIL_PACKETS = 2000  # our choice: demuxing (not decoding) this many packets is cheap
_TAIL_SLACK_S = 0.25  # our choice: data may end this much before the header's duration


@dataclass(frozen=True)
class Probe:
    """What PyAV says about one video."""

    duration_s: float
    fps: float
    width: int
    height: int
    codec: str
    n_frames: int | None
    size_bytes: int | None

    def values(self) -> dict[str, Any]:
        return dict(duration_s=self.duration_s, fps=self.fps, width=self.width,
                    height=self.height, codec=self.codec, n_frames=self.n_frames,
                    size_bytes=self.size_bytes)




@dataclass(frozen=True)
class Limits:
    """The sane range of a video; anything outside is `absurd_video` (see IngestStage)."""

    min_side: int
    max_side: int
    max_fps: float
    max_hours: float

    def check(self, p: Probe) -> None:
        problems = []
        if not 0 < p.fps <= self.max_fps:
            problems.append(f"fps {p.fps:g} not in (0, {self.max_fps:g}]")
        if min(p.width, p.height) < self.min_side or max(p.width, p.height) > self.max_side:
            problems.append(f"size {p.width}x{p.height} not within "
                            f"[{self.min_side}, {self.max_side}] px")
        if p.duration_s > self.max_hours * 3600:
            problems.append(f"duration {p.duration_s / 3600:.1f} h > {self.max_hours:g} h")
        if problems:
            raise Rejected("absurd_video", "; ".join(problems))


def probe_video(source: str, *, timeout_s: float, check_tail: bool, limits: Limits) -> Probe:
    """Probe one video; raises Rejected with the rejection reason."""
    url = is_url(source)
    size = None if url else _check_local(source)
    container = _open(source, url, timeout_s)
    try:
        stream = _video_stream(container, source)
        probe = _describe(container, stream, size)
        limits.check(probe)
        _decode_first(container, stream)
        video_end = _check_tail(container, stream, probe) if check_tail else None
        if (stream.duration is None and video_end
                and video_end < probe.duration_s - 0.5 / probe.fps):
            probe = dataclasses.replace(probe, duration_s=video_end)  # audio ran longer
        return probe
    except av.FFmpegError as e:
        raise Rejected("unreachable_url" if url and _is_network(e) else
                           "unreadable_video", _ffmpeg_detail(e)) from None
    finally:
        container.close()


def _check_local(path: str) -> int:
    if not os.path.exists(path):
        raise Rejected("missing_file", f"{path} does not exist")
    if os.path.isdir(path):
        raise Rejected("not_a_video", f"{path} is a folder")
    size = os.path.getsize(path)
    if size == 0:
        raise Rejected("zero_length", f"{path} is an empty file")
    return size


def _open(source: str, is_url: bool, timeout_s: float) -> av.container.InputContainer:
    # PyAV's timeout interrupts any blocking open/read; rw_timeout bounds the protocol layer
    # too (microseconds), so a server that accepts and then stalls cannot hang a worker.
    options = {"rw_timeout": str(int(timeout_s * 1e6))} if is_url else {}
    try:
        return av.open(source, timeout=(timeout_s, timeout_s), options=options)
    except av.FFmpegError as e:
        if is_url:
            if isinstance(e, av.error.InvalidDataError):
                raise Rejected("not_a_video", f"{_ffmpeg_detail(e)}; a web page or a broken "
                                   f"file? (download pages' videos first, e.g. with "
                                   f"video2dataset)") from None
            if isinstance(e, av.error.ExitError):  # PyAV's timeout interrupted the open
                raise Rejected("unreachable_url", f"no answer from {source} within "
                                   f"{timeout_s:g} s") from None
            raise Rejected("unreachable_url", _ffmpeg_detail(e)) from None
        if isinstance(e, av.error.InvalidDataError) and not _looks_like_container(source):
            raise Rejected("not_a_video", f"{source} is not a video file "
                               f"({_sniff(source)})") from None
        raise Rejected("unreadable_video", _ffmpeg_detail(e)) from None


def _video_stream(container: av.container.InputContainer, source: str) -> av.VideoStream:
    fmt = container.format.name
    if fmt == "image2" or fmt.endswith("_pipe"):
        raise Rejected("not_a_video", f"{source} is an image ({fmt})")
    streams = [s for s in container.streams.video
               if not s.disposition & av.stream.Disposition.attached_pic]
    if not streams:
        if container.streams.audio:
            raise Rejected("audio_only", f"{source} has audio but no video stream")
        raise Rejected("not_a_video", f"{source} has no video stream ({fmt})")
    return streams[0]


def _describe(container: av.container.InputContainer, stream: av.VideoStream,
              size: int | None) -> Probe:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = float(rate) if rate else 0.0
    n_frames = stream.frames or None
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / av.time_base
    elif n_frames and fps > 0:
        duration = n_frames / fps
    else:
        duration = _demux_duration(container, stream)
    if not duration or duration <= 0:
        raise Rejected("zero_length", "the video has no duration")
    if size is None and getattr(container, "size", -1) > 0:
        size = int(container.size)
    ctx = stream.codec_context
    return Probe(duration_s=duration, fps=fps, width=int(ctx.width or 0),
                 height=int(ctx.height or 0), codec=ctx.name, n_frames=n_frames,
                 size_bytes=size)


def _demux_duration(container: av.container.InputContainer, stream: av.VideoStream) -> float:
    """Last packet end minus first start, for streams whose headers do not say (raw streams)."""
    first = last = None
    for packet in container.demux(stream):
        if packet.pts is None:
            continue
        first = packet.pts if first is None else min(first, packet.pts)
        last = max(last or packet.pts, packet.pts + (packet.duration or 0))
    container.seek(0)
    if first is None or stream.time_base is None:
        return 0.0
    return float((last - first) * stream.time_base)


def _decode_first(container: av.container.InputContainer, stream: av.VideoStream) -> None:
    """Decode the first frame; a failure means a broken file (or one with no frames)."""
    packets = 0
    for packet in container.demux(stream):
        packets += 1
        for _frame in packet.decode():
            return
        if packets >= _MAX_PROBE_PACKETS:
            break
    if packets <= 1:  # only the end-of-stream flush packet
        raise Rejected("zero_length", "the video has no decodable frame")
    raise Rejected("unreadable_video",
                       f"no frame decoded from the first {packets} packets: corrupt stream")


def _check_tail(container: av.container.InputContainer, stream: av.VideoStream,
                probe: Probe) -> float | None:
    """Catch truncated files without decoding: the data must reach the end of the video.

    Fully indexed containers (MP4, AVI) say where their last packets are: they must lie inside
    the file. Otherwise (MKV/WebM, TS), demux every stream (no decoding) from the keyframe
    before the end and require data up to the last quarter second (or two frames). This also
    measures where the video stream itself ends, returned (seconds) for containers whose
    headers only give the whole file's duration (audio may run longer than video).
    """
    target = probe.duration_s - max(2.0 / probe.fps, _TAIL_SLACK_S)
    origin = stream.start_time or 0
    entries = stream.index_entries
    if probe.size_bytes and len(entries):
        last = entries[len(entries) - 1]
        if last.pos >= 0 and last.pos + last.size > probe.size_bytes:
            raise Rejected("unreadable_video", f"truncated: the index needs "
                               f"{last.pos + last.size} bytes, the file has {probe.size_bytes}")
        if (last.timestamp - origin) * stream.time_base >= target:
            return None  # a full index that fits in the file
        # else a partial index (MKV without cues lists only the packets read so far): demux
    if target <= 0:
        return None
    container.seek(origin + int(target / stream.time_base), stream=stream, backward=True)
    reached, video_end = 0.0, None
    for n, packet in enumerate(container.demux()):
        if n >= _MAX_TAIL_PACKETS:
            return None  # a very long GOP: cannot tell cheaply, let the decoders find out
        own = packet.stream
        if packet.pts is None or own.time_base is None:
            continue
        start = float((packet.pts - (own.start_time or 0)) * own.time_base)
        end = start + float((packet.duration or 0) * own.time_base)
        reached = max(reached, end)
        if own.index == stream.index:
            video_end = end if video_end is None else max(video_end, end)
    if reached < target:
        raise Rejected("unreadable_video", f"truncated: data ends at {reached:.2f} s of "
                           f"{probe.duration_s:.2f} s")
    return video_end


def _looks_like_container(path: str) -> bool:
    with open(path, "rb") as f:
        head = f.read(16)
    return any(head[off:off + len(magic)] == magic for off, magic in _CONTAINER_MAGIC)


def _sniff(path: str) -> str:
    with open(path, "rb") as f:
        head = f.read(512)
    if head.startswith((b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM")):
        return "an image"
    try:
        head.decode("utf-8")
        return "text"
    except UnicodeDecodeError:
        return "unknown binary data"


def _is_network(e: av.FFmpegError) -> bool:
    return not isinstance(e, av.error.InvalidDataError)


def _ffmpeg_detail(e: Exception) -> str:
    return " ".join(str(e).split())[:300]

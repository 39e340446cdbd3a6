"""Ingest: manifest rows -> candidate clips with a probed video and a decoded caption.

The first stage of every run (input level). For each manifest row (see `curation.manifest`):

  1. the caption is decoded as strict UTF-8 and stripped (empty -> `empty_caption`);
  2. the video is probed with PyAV, bounded by a timeout: container, first video stream,
     duration, frame rate, size, codec; the first frame and a frame near the end are decoded,
     so a truncated file is caught here rather than by a later stage;
  3. one candidate clip is emitted per time range: the row's start/end, each Panda-70M
     segment (each with its own caption), or the whole video when no times are given.

Keys: `video_id` is the manifest id or a hash of the path/URL. `input_key` is the clip key
for a row with times and for each Panda-70M segment, else the video id, so every candidate
has its own input key. A Panda-70M row that fails as a whole (missing file, ...) is one
rejection keyed by the video id. A segment whose caption is empty or not UTF-8 is rejected on
its own (with its clip key); the video's other segments go on.

Times are seconds from the video stream's first timestamp (as in `curation.video_io`).
"""
from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

import av
import pyarrow as pa

from curation import confine, keys
from curation.stage import OUTCOME_FIELDS, Outcome, Resources, Stage, merge_outcome, to_table

REASONS = {
    "missing_file": "the video path does not exist (or a video2dataset sample has no video)",
    "missing_video": "the manifest row has no video path or URL",
    "unreadable_video": "a video container that cannot be opened or decoded (truncated, corrupt)",
    "not_a_video": "the file or URL is not a video (text, an image, a web page, a folder)",
    "zero_length": "an empty file, or a video with no duration or no decodable frame",
    "audio_only": "the container has no video stream (only audio or cover art)",
    "absurd_video": "frame rate, frame size or duration outside the configured sane range",
    "empty_caption": "the caption is missing or only whitespace",
    "caption_not_utf8": "the caption bytes are not valid UTF-8",
    "clip_out_of_range": "the clip's start/end lie outside the video's duration",
    "bad_timestamps": "start/end cannot be parsed, are negative, or end <= start",
    "bad_manifest_row": "the row cannot be interpreted (e.g. Panda-70M captions do not match "
                        "its timestamps, a JSONL line is not an object)",
    "unreachable_url": "the URL could not be fetched (connection refused, HTTP error, timeout)",
    "duplicate_input": "the same input key appeared earlier in the manifest; the later row is dropped",
    "ingest_error": "an unexpected error while ingesting the row (a bug: please report it)",
    **confine.REASONS,
}

WRITES = (
    pa.field("input_key", pa.string()),
    pa.field("video_id", pa.string()),
    pa.field("source", pa.string()),  # absolute local path or URL
    pa.field("caption", pa.string()),
    pa.field("clip_key", pa.string()),
    pa.field("start_s", pa.float64()),
    pa.field("end_s", pa.float64()),
    pa.field("duration_s", pa.float64()),  # the whole video
    pa.field("fps", pa.float64()),
    pa.field("width", pa.int32()),
    pa.field("height", pa.int32()),
    pa.field("codec", pa.string()),
    pa.field("n_frames", pa.int64()),  # the container's count; null when it does not say
    pa.field("size_bytes", pa.int64()),  # null for URLs whose server does not say
    pa.field("input_row", pa.int64()),  # position in the manifest, for tracing a row back
)
OUTPUT_SCHEMA = pa.schema([*WRITES, *OUTCOME_FIELDS])

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
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


class ProbeFailure(Exception):
    """A video that cannot be ingested, with its rejection reason."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason, self.detail = reason, detail


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


# --- The stage -------------------------------------------------------------------------------


@dataclass
class IngestStage(Stage):
    """Manifest rows in, one row per candidate clip out (see the module docstring)."""

    name: ClassVar[str] = "ingest"
    level: ClassVar[str] = "input"
    reads: ClassVar[tuple[str, ...]] = ("input_row", "id", "video", "caption", "start", "end",
                                        "segments", "problem", "problem_detail")
    writes: ClassVar[tuple[pa.Field, ...]] = WRITES

    # I/O-bound: a quarter core per actor, several rows per call (our choice).
    resources: Resources = field(default_factory=lambda: Resources(cpus=0.25, batch_size=16))
    timeout_s: float = 20.0  # our choice: open/read timeout per probe, local files and URLs
    check_tail: bool = True  # check the data reaches the video's end (catches truncation)
    range_tolerance_s: float = 0.5  # our choice: container durations can be off by a frame or two
    min_side: int = 16  # our choice: smaller frames carry no usable subject
    max_side: int = 8192  # our choice: larger than 8K is a corrupt header, not a video
    max_fps: float = 240.0  # our choice: above high-speed-camera rates is a broken timebase
    max_hours: float = 6.0  # our choice: longer inputs are streams/recordings, not clips
    # Confinement (curation/confine.py). No roots here: the runner's default, the manifest's
    # folder tree; set them (or the `alchemist_input_roots` Airflow Variable) to widen it.
    input_roots: list[str] = field(default_factory=list)
    url_schemes: list[str] = field(default_factory=lambda: list(confine.DEFAULT_URL_SCHEMES))
    allow_private_hosts: bool = False  # a trusted manifest may name hosts on a private network

    def __post_init__(self) -> None:
        self._probes: dict[str, Probe | ProbeFailure] = {}
        self._confinement = confine.Confinement.of(self.input_roots, self.url_schemes,
                                                   self.allow_private_hosts)

    # The runner calls this; it adds a probe cache and a duplicate guard to the base class's
    # row loop, and returns only the work-table columns (not the manifest's). The plan already
    # marks every repeated manifest row `duplicate_input` (curation.plan); the guard catches
    # keys that only appear after ingest (a Panda-70M segment listed twice within its row).
    def __call__(self, batch: pa.Table) -> pa.Table:
        self._probes = {}
        seen: set[str] = set()
        out = []
        try:
            for row in batch.to_pylist():
                identity = _identity(row)
                for outcome in self._safe_process(row):
                    values = {**identity, **outcome.values}
                    key = values["input_key"]
                    if key in seen:
                        outcome = Outcome.reject(
                            "duplicate_input", f"input {key} appears earlier in this batch")
                    seen.add(key)
                    out.append(merge_outcome({}, Outcome(values, outcome.reason,
                                                         outcome.detail, outcome.notes)))
        finally:
            self._probes = {}
        return to_table(out, OUTPUT_SCHEMA)

    def reject_rows(self, batch: pa.Table, reason: str, detail: str) -> pa.Table:
        rows = [merge_outcome({}, Outcome.reject(reason, detail, **_identity(row)))
                for row in batch.to_pylist()]
        return to_table(rows, OUTPUT_SCHEMA)

    def process(self, row: dict) -> list[Outcome]:
        ident = _identity(row)
        if row.get("problem"):
            return [Outcome.reject(row["problem"], row.get("problem_detail") or "", **ident)]
        segments = row.get("segments")
        if segments is None:
            return [self._plain_row(row, ident)]
        return self._segment_row(row, ident, segments)

    def _plain_row(self, row: dict, ident: dict) -> Outcome:
        """A row with one caption and optional start/end."""
        caption = decode_caption(row.get("caption"))
        if isinstance(caption, Outcome):
            caption.values.update(ident)
            return caption
        start, end = row.get("start"), row.get("end")
        if start is not None and end is not None and end <= start:
            return Outcome.reject("bad_timestamps", f"end {end:g} s <= start {start:g} s",
                                  **ident, caption=caption)
        probe = self._probe_or_reject(ident["source"])
        if isinstance(probe, Outcome):
            probe.values.update(ident, caption=caption)
            return probe
        return self.candidate(ident, probe, start, end, caption)

    def _segment_row(self, row: dict, ident: dict, segments: list[dict]) -> list[Outcome]:
        """A Panda-70M row: one candidate per segment, each with its own caption."""
        if not segments:
            return [Outcome.reject("bad_manifest_row", "the row lists no segments", **ident)]
        probe = self._probe_or_reject(ident["source"])
        if isinstance(probe, Outcome):
            probe.values.update(ident)
            probe.detail += f" ({len(segments)} segments)"
            return [probe]
        outcomes = []
        for seg in segments:
            start, end = seg.get("start"), seg.get("end")
            seg_ident = {**ident, "input_key": keys.times_key(ident["video_id"], start, end)}
            caption = decode_caption(seg.get("caption"))
            if isinstance(caption, Outcome):
                caption.values.update(seg_ident, **probe.values())
                outcomes.append(caption)
                continue
            outcomes.append(self.candidate(seg_ident, probe, start, end, caption))
        return outcomes

    def candidate(self, ident: dict, probe: Probe, start: float | None, end: float | None,
                  caption: str) -> Outcome:
        """The clip [start, end) of a probed video, checked against its duration."""
        duration = probe.duration_s
        s = 0.0 if start is None else float(start)
        e = duration if end is None else float(end)
        values = {**ident, **probe.values(), "caption": caption}
        if not (math.isfinite(s) and math.isfinite(e)) or s < 0 or e <= s:
            return Outcome.reject("bad_timestamps", f"clip {s:g}-{e:g} s is not a positive range",
                                  **values)
        if s >= duration or e > duration + self.range_tolerance_s:
            return Outcome.reject(
                "clip_out_of_range",
                f"clip {s:.3f}-{e:.3f} s is outside the video's {duration:.3f} s", **values)
        e = min(e, duration)
        clip = keys.clip_key(ident["video_id"], s, e)
        return Outcome(values={**values, "clip_key": clip, "start_s": s, "end_s": e})

    # --- Probing -----------------------------------------------------------------------------

    def _probe_or_reject(self, source: str) -> Probe | Outcome:
        if source not in self._probes:
            try:
                self._probes[source] = self.probe(source)
            except ProbeFailure as failure:
                self._probes[source] = failure
        result = self._probes[source]
        if isinstance(result, ProbeFailure):
            return Outcome.reject(result.reason, result.detail)
        return result

    def probe(self, source: str) -> Probe:
        """Probe one video; raises ProbeFailure with the rejection reason. A source outside
        the confinement is refused before anything opens it."""
        try:
            source = self._confinement.check(source)
        except confine.Refused as refused:
            raise ProbeFailure(refused.reason, refused.detail) from None
        is_url = bool(_URL.match(source))
        size = None if is_url else _check_local(source)
        container = _open(source, is_url, self.timeout_s)
        try:
            stream = _video_stream(container, source)
            probe = _describe(container, stream, size)
            self._check_sane(probe)
            _decode_first(container, stream)
            video_end = _check_tail(container, stream, probe) if self.check_tail else None
            if (stream.duration is None and video_end
                    and video_end < probe.duration_s - 0.5 / probe.fps):
                probe = dataclasses.replace(probe, duration_s=video_end)  # audio ran longer
            return probe
        except av.FFmpegError as e:
            raise ProbeFailure("unreachable_url" if is_url and _is_network(e) else
                               "unreadable_video", _ffmpeg_detail(e)) from None
        finally:
            container.close()

    def _check_sane(self, p: Probe) -> None:
        problems = []
        if not 0 < p.fps <= self.max_fps:
            problems.append(f"fps {p.fps:g} not in (0, {self.max_fps:g}]")
        if min(p.width, p.height) < self.min_side or max(p.width, p.height) > self.max_side:
            problems.append(f"size {p.width}x{p.height} not within "
                            f"[{self.min_side}, {self.max_side}] px")
        if p.duration_s > self.max_hours * 3600:
            problems.append(f"duration {p.duration_s / 3600:.1f} h > {self.max_hours:g} h")
        if problems:
            raise ProbeFailure("absurd_video", "; ".join(problems))


# --- Helpers ---------------------------------------------------------------------------------


def decode_caption(raw: bytes | str | None) -> str | Outcome:
    """The caption as stripped text, or a rejection (`empty_caption`, `caption_not_utf8`)."""
    if raw is None:
        return Outcome.reject("empty_caption", "the row has no caption")
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            bad = raw[e.start:e.start + 4]
            return Outcome.reject("caption_not_utf8",
                                  f"caption byte {e.start} is not UTF-8 ({bad!r})")
    text = raw.strip().lstrip("\ufeff").strip()
    if not text:
        return Outcome.reject("empty_caption", "the caption is empty or whitespace")
    return text


def _identity(row: dict) -> dict[str, Any]:
    """Keys every output row carries, computable from the manifest row alone (`keys.input_key`)."""
    source = row.get("video") or ""
    return dict(input_key=keys.input_key(row), video_id=keys.video_id(row.get("id"), source),
                source=source, input_row=row.get("input_row"))


def _check_local(path: str) -> int:
    if not os.path.exists(path):
        raise ProbeFailure("missing_file", f"{path} does not exist")
    if os.path.isdir(path):
        raise ProbeFailure("not_a_video", f"{path} is a folder")
    size = os.path.getsize(path)
    if size == 0:
        raise ProbeFailure("zero_length", f"{path} is an empty file")
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
                raise ProbeFailure("not_a_video", f"{_ffmpeg_detail(e)}; a web page or a broken "
                                   f"file? (download pages' videos first, e.g. with "
                                   f"video2dataset)") from None
            if isinstance(e, av.error.ExitError):  # PyAV's timeout interrupted the open
                raise ProbeFailure("unreachable_url", f"no answer from {source} within "
                                   f"{timeout_s:g} s") from None
            raise ProbeFailure("unreachable_url", _ffmpeg_detail(e)) from None
        if isinstance(e, av.error.InvalidDataError) and not _looks_like_container(source):
            raise ProbeFailure("not_a_video", f"{source} is not a video file "
                               f"({_sniff(source)})") from None
        raise ProbeFailure("unreadable_video", _ffmpeg_detail(e)) from None


def _video_stream(container: av.container.InputContainer, source: str) -> av.VideoStream:
    fmt = container.format.name
    if fmt == "image2" or fmt.endswith("_pipe"):
        raise ProbeFailure("not_a_video", f"{source} is an image ({fmt})")
    streams = [s for s in container.streams.video
               if not s.disposition & av.stream.Disposition.attached_pic]
    if not streams:
        if container.streams.audio:
            raise ProbeFailure("audio_only", f"{source} has audio but no video stream")
        raise ProbeFailure("not_a_video", f"{source} has no video stream ({fmt})")
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
        raise ProbeFailure("zero_length", "the video has no duration")
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
        raise ProbeFailure("zero_length", "the video has no decodable frame")
    raise ProbeFailure("unreadable_video",
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
            raise ProbeFailure("unreadable_video", f"truncated: the index needs "
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
        raise ProbeFailure("unreadable_video", f"truncated: data ends at {reached:.2f} s of "
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

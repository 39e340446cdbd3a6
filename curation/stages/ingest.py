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

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pyarrow as pa

from curation import confine, keys
from curation.errors import Rejected
from curation.probe import Limits, Probe, probe_video
from curation.stage import OUTCOME_FIELDS, Outcome, Resources, Stage

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

# --- The stage -------------------------------------------------------------------------------


@dataclass
class IngestStage(Stage):
    """Manifest rows in, one row per candidate clip out (see the module docstring)."""

    name: ClassVar[str] = "ingest"
    level: ClassVar[str] = "input"
    reads: ClassVar[tuple[str, ...]] = ("input_row", "id", "video", "caption", "start", "end",
                                        "segments", "problem", "problem_detail")
    writes: ClassVar[tuple[pa.Field, ...]] = WRITES
    keeps_input_columns: ClassVar[bool] = False  # the work table starts here

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
        self._probes: dict[str, Probe | Rejected] = {}
        self._confinement = confine.Confinement.of(self.input_roots, self.url_schemes,
                                                   self.allow_private_hosts)

    # The plan already marks every repeated manifest row `duplicate_input` (curation.plan);
    # the guard here catches keys that only appear after ingest (a Panda-70M segment listed
    # twice within its row).
    def process_batch(self, rows: list[dict]) -> list[list[Outcome]]:
        """Candidates of every row; a probe cache spans the batch (Panda-70M rows repeat a
        video), and an input key already seen earlier in the batch is `duplicate_input`."""
        self._probes = {}
        seen: set[str] = set()
        try:
            results = [self.candidates(row) for row in rows]
        finally:
            self._probes = {}
        for row, outcomes in zip(rows, results):
            for outcome in outcomes:
                key = outcome.values.get("input_key") or _identity(row)["input_key"]
                if key in seen:
                    outcome.reason = "duplicate_input"
                    outcome.detail = f"input {key} appears earlier in this batch"
                seen.add(key)
        return results

    def row_values(self, row: dict) -> dict:
        return _identity(row)

    def candidates(self, row: dict) -> list[Outcome]:
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
            except Rejected as failure:
                self._probes[source] = failure
        result = self._probes[source]
        if isinstance(result, Rejected):
            return Outcome.reject(result.reason, result.detail)
        return result

    def probe(self, source: str) -> Probe:
        """Probe one video with this stage's timeout and limits; raises Rejected. A source
        outside the confinement is refused before anything opens it."""
        source = self._confinement.check(source)
        limits = Limits(self.min_side, self.max_side, self.max_fps, self.max_hours)
        return probe_video(source, timeout_s=self.timeout_s, check_tail=self.check_tail,
                           limits=limits)


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

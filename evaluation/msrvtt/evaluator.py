"""`alchemist bench eval`: score a folder of generated videos on one mode of the benchmark.

Input layout: `<videos>/<sample>.mp4` for each sample of the mode's lists (what `bench
generate` writes; any other model only has to write the same). Output:

    <out>/videos/<sample>.json   every intermediate: per-frame Text-S cosines, Vid-S, per frame
                                 and word the box, its word score, the mask check and the DINO
                                 similarity (or per frame the face box and similarity), the
                                 flow interval, threshold, per-pair flow scores and the flag
    <out>/cache/                 reference embeddings, computed once per model
    <out>/leaderboard.{json,md}  the run's row beside the paper's published rows

Resumable: a video whose JSON exists with the same settings fingerprint and the same video
file (size, mtime) is not recomputed. Batched: `batch_size` videos go through each model
together. Several processes split the work with `shard=(i, n)`; `evaluate_on_ray` runs n
such shares as Ray tasks (one GPU each on a GPU cluster), then aggregates.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from curation.errors import OperatorError
from evaluation.msrvtt import leaderboard, metrics, modes, scorers
from evaluation.msrvtt.layout import VIDEO, SAMPLES_DIR, read_rgb, read_rgba

log = logging.getLogger("alchemist.bench")
FINGERPRINT_EXCLUDES = ("batch_size", "device", "shard")  # do not change any number


@dataclass
class EvalSettings:
    clip: str = scorers.CLIP_MODEL
    grounding_dino: str = scorers.GROUNDING_MODEL
    sam: str = scorers.SAM_MODEL
    dino: str = scorers.DINO_MODEL
    face_detector: str = ""  # YOLOv9-face ONNX; "" = MTCNN (shipped)
    face_embedder: str = ""  # ArcFace R100 ONNX; "" = dlib ResNet (shipped)
    raft: str = ""  # RAFT state dict; "" = OpenCV Farneback
    raft_arch: str = "large"
    box_threshold: float = metrics.BOX_THRESHOLD
    batch_size: int = 8  # videos per batch
    device: str = "auto"
    shard: tuple[int, int] = (0, 1)  # (index, count): this process scores samples i, i+n, ...

    def fingerprint(self, mode: str) -> str:
        kept = {k: v for k, v in asdict(self).items() if k not in FINGERPRINT_EXCLUDES}
        return hashlib.sha256(json.dumps([mode, kept], sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class Scorers:
    clip: scorers.ClipEmbedder
    flow: object
    locator: scorers.SubjectLocator | None = None
    dino: scorers.DinoEmbedder | None = None
    faces: scorers.FaceIdentity | None = None
    notes: list[str] = field(default_factory=list)

    def backends(self) -> dict:
        ids = {"clip": self.clip.id, "flow": self.flow.id}
        if self.locator:
            ids |= {"subject": self.locator.id, "dino": self.dino.id}
        if self.faces:
            ids["faces"] = self.faces.id
        return ids


def load_scorers(settings: EvalSettings, mode: str) -> Scorers:
    dev = settings.device
    flow = (scorers.RaftFlow(settings.raft, settings.raft_arch, dev) if settings.raft
            else scorers.FarnebackFlow())
    s = Scorers(scorers.ClipEmbedder(settings.clip, dev), flow)
    if not settings.raft:
        s.notes.append("Dync-D uses OpenCV Farneback flow, not RAFT: not comparable to the paper")
    if modes.IDENTITY_METRIC[mode] == "face_s":
        s.faces = scorers.FaceIdentity(settings.face_detector, settings.face_embedder)
        if not (settings.face_detector and settings.face_embedder):
            s.notes.append(f"Face-S uses {s.faces.id}, not YOLOv9-face + ArcFace R100: not comparable "
                           f"to the paper")
    else:
        s.locator = scorers.SubjectLocator(settings.grounding_dino, settings.sam, dev, settings.box_threshold)
        s.dino = scorers.DinoEmbedder(settings.dino, dev)
    return s


# --- reference embeddings (cached) ----------------------------------------------------------------


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def reference_embeddings(benchmark: Path, lists: modes.ModeLists, s: Scorers, cache_dir: Path) -> dict:
    """{(sample, word): (n, D) embeddings} for every conditioning word; cached per model."""
    model_id = s.faces.id if s.faces else s.dino.id
    path = cache_dir / f"refs-{hashlib.sha256(model_id.encode()).hexdigest()[:12]}.npz"
    cached = dict(np.load(path)) if path.exists() else {}
    todo = [(f"{name}/{c.word}", c.images) for name, cs in zip(lists.samples, lists.conditions)
            for c in cs if c.type != "background" and f"{name}/{c.word}" not in cached]
    if todo:
        images = [read_rgba(benchmark / p) for _, paths in todo for p in paths]
        if s.faces:
            embeddings = s.faces.embed([im[..., :3] for im in images])
        else:
            embeddings = s.dino([scorers.rgba_to_white_square(im) for im in images])
        start = 0
        for key, paths in todo:
            cached[key] = embeddings[start:start + len(paths)]
            start += len(paths)
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.tmp.npz")
        np.savez(tmp, **cached)
        os.replace(tmp, path)
    return cached


# --- one batch of videos -------------------------------------------------------------------------


def read_video(path: Path) -> tuple[np.ndarray, float]:
    from curation.video_io import decode_clip, open_video

    container, stream = open_video(path)
    fps = float(stream.average_rate or stream.guessed_rate or 24)
    container.close()
    frames, _ = decode_clip(path)
    if not len(frames):
        raise ValueError(f"{path.name} has no decodable frame")
    return frames, fps


def evenly(frames: np.ndarray, n: int) -> np.ndarray:
    return frames[np.linspace(0, len(frames) - 1, min(n, len(frames))).round().astype(int)]


def dynamic_degree(frames: np.ndarray, fps: float, flow) -> dict:
    interval = metrics.flow_interval(fps)
    kept = frames[::interval]
    threshold = metrics.flow_threshold(*kept.shape[1:3])
    pair_scores = [metrics.pair_flow_score(f) for f in flow(kept)] if len(kept) > 1 else []
    return {"fps": fps, "interval": interval, "frames": len(kept), "threshold": threshold,
            "required_pairs": metrics.required_pairs(len(kept)), "pair_scores": pair_scores,
            "dynamic": bool(metrics.is_dynamic(pair_scores, len(kept), threshold))}


def subject_scores(videos: list[dict], s: Scorers, refs: dict) -> None:
    frames = [f for v in videos for f in v["frames"]]
    words = [v["words"] for v in videos for _ in v["frames"]]
    found = s.locator.locate(frames, words)
    crops, where = [], []
    for i, fs in enumerate(found):
        for f in fs:
            if f.box is not None and f.mask_valid:
                crops.append(metrics.white_square_crop(frames[i], f.mask, f.box))
                where.append((i, f))
    embeddings = s.dino(crops) if crops else []
    owner = [v for v in videos for _ in v["frames"]]
    sims = {id(f): metrics.reference_similarity(e, refs[f"{owner[i]['sample']}/{f.word}"])
            for (i, f), e in zip(where, embeddings)}
    start = 0
    for v in videos:
        per_frame = found[start:start + len(v["frames"])]
        start += len(v["frames"])
        table = [[sims.get(id(f)) for f in fs] for fs in per_frame]
        v["record"]["subj_s"] = {
            "score": metrics.subject_video_score(table), "words": v["words"],
            "per_frame": [[{"word": f.word, "box": f.box, "box_score": f.score, "mask_valid": f.mask_valid,
                            "similarity": sims.get(id(f))} for f in fs] for fs in per_frame]}


def face_scores(videos: list[dict], s: Scorers, refs: dict) -> None:
    for v in videos:
        boxes = [s.faces.first_face(f) for f in v["frames"]]
        crops = [f[b[1]:b[3], b[0]:b[2]] for f, b in zip(v["frames"], boxes) if b is not None]
        embeddings = iter(s.faces.embed(crops))
        word = v["words"][0]
        sims = [metrics.reference_similarity(next(embeddings), refs[f"{v['sample']}/{word}"])
                if b is not None else None for b in boxes]
        v["record"]["face_s"] = {"score": metrics.face_video_score(sims), "word": word,
                                 "per_frame": [{"box": b, "similarity": x} for b, x in zip(boxes, sims)]}


def score_batch(benchmark: Path, videos: list[dict], s: Scorers, refs: dict, mode: str) -> None:
    """Fill each video's `record` with every metric; videos share each model call."""
    gts = [evenly(read_video(benchmark / SAMPLES_DIR / v["sample"] / VIDEO)[0], len(v["frames"]))
           for v in videos]
    clip_frames = [f for v in videos for f in v["frames"]] + [f for g in gts for f in g]
    image_emb = s.clip.images(clip_frames)
    text_emb = s.clip.texts([v["prompt"] for v in videos])
    n_gen = sum(len(v["frames"]) for v in videos)
    gen, gt = image_emb[:n_gen], image_emb[n_gen:]
    g0 = t0 = 0
    for i, v in enumerate(videos):
        n, m = len(v["frames"]), len(gts[i])
        score, per_frame = metrics.text_similarity(gen[g0:g0 + n], text_emb[i])
        v["record"]["text_s"] = {"score": score, "per_frame": per_frame}
        v["record"]["vid_s"] = {"score": metrics.video_similarity(gen[g0:g0 + n], gt[t0:t0 + m]),
                                "generated_frames": n, "ground_truth_frames": m}
        v["record"]["dync_d"] = dynamic_degree(v["frames"], v["fps"], s.flow)
        g0, t0 = g0 + n, t0 + m
    (face_scores if modes.IDENTITY_METRIC[mode] == "face_s" else subject_scores)(videos, s, refs)


# --- the run ---------------------------------------------------------------------------------------


def video_stamp(path: Path) -> dict:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def is_done(json_path: Path, fingerprint: str, stamp: dict) -> bool:
    if not json_path.exists():
        return False
    try:
        record = json.loads(json_path.read_text())
    except json.JSONDecodeError:  # a torn write from a killed run: redo it
        return False
    return record.get("fingerprint") == fingerprint and record.get("video_file") == stamp


def evaluate(benchmark: Path, videos_dir: Path, mode: str, out: Path, settings: EvalSettings = EvalSettings(),
             name: str | None = None) -> dict:
    benchmark, videos_dir, out = Path(benchmark), Path(videos_dir), Path(out)
    if not videos_dir.is_dir():
        raise OperatorError(f"--videos {videos_dir} is not a directory; pass the folder of <sample>.mp4 files")
    lists = modes.load_mode(benchmark, mode)
    fingerprint = settings.fingerprint(mode)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    index, count = settings.shard
    mine = [i for i in range(len(lists.samples)) if i % count == index]
    missing = [lists.samples[i] for i in mine if not (videos_dir / f"{lists.samples[i]}.mp4").exists()]
    todo = [i for i in mine if lists.samples[i] not in missing and not is_done(
        out / "videos" / f"{lists.samples[i]}.json", fingerprint,
        video_stamp(videos_dir / f"{lists.samples[i]}.mp4"))]
    if todo:  # models load only when there is something to score
        s = load_scorers(settings, mode)
        refs = reference_embeddings(benchmark, lists, s, out / "cache")
        for start in range(0, len(todo), max(1, settings.batch_size)):
            jobs = [_job(lists, i, videos_dir, fingerprint) for i in todo[start:start + settings.batch_size]]
            _score_and_write(jobs, benchmark, s, refs, mode, out)
    records = [json.loads((out / "videos" / f"{lists.samples[i]}.json").read_text())
               for i in mine if (out / "videos" / f"{lists.samples[i]}.json").exists()]
    first = records[0] if records else {}
    row = {"model": name or videos_dir.name, "mode": mode, **leaderboard.aggregate(records, mode),
           "missing": missing, "backends": first.get("backends", {}), "notes": first.get("notes", []),
           "fingerprint": fingerprint, "scored_now": len(todo)}
    leaderboard.write(out, row)
    return row


def _job(lists: modes.ModeLists, i: int, videos_dir: Path, fingerprint: str) -> dict:
    sample, path = lists.samples[i], videos_dir / f"{lists.samples[i]}.mp4"
    words = [c.word for c in lists.conditions[i] if c.type != "background"]
    return {"sample": sample, "prompt": lists.prompts[i], "words": words, "path": path,
            "record": {"sample": sample, "prompt": lists.prompts[i], "fingerprint": fingerprint,
                       "video_file": video_stamp(path)}}


def _score_and_write(jobs: list[dict], benchmark: Path, s: Scorers, refs: dict, mode: str, out: Path) -> None:
    ready = []
    for job in jobs:
        try:
            job["frames"], job["fps"] = read_video(job["path"])
            ready.append(job)
        except (OSError, ValueError) as e:  # a broken video is a row with its reason, not a crash
            job["record"]["error"] = f"{type(e).__name__}: {e}"
    if ready:
        score_batch(benchmark, ready, s, refs, mode)
    for job in jobs:
        job["record"]["backends"], job["record"]["notes"] = s.backends(), s.notes
        _atomic_write(out / "videos" / f"{job['sample']}.json", json.dumps(job["record"], indent=1))


def evaluate_on_ray(benchmark: Path, videos_dir: Path, mode: str, out: Path, settings: EvalSettings,
                    workers: int, gpus_per_worker: float = 0.0, name: str | None = None,
                    ray_address: str | None = None) -> dict:
    """`workers` Ray tasks score shares (i, workers) into the same `out`; then one pass here
    writes the whole leaderboard, recomputing nothing the tasks finished."""
    import ray

    from curation.runner import ensure_ray

    ensure_ray(ray_address)
    task = ray.remote(num_cpus=1, num_gpus=gpus_per_worker)(evaluate)
    ray.get([task.remote(benchmark, videos_dir, mode, out, replace(settings, shard=(i, workers)), name)
             for i in range(workers)])
    return evaluate(benchmark, videos_dir, mode, out, replace(settings, shard=(0, 1)), name)

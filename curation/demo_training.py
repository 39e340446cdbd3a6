"""`make demo`, continued: the curated dataset's asset event starts the `train` DAG (a few
steps of the `demo` config), then one video is sampled from the new checkpoint.

With Airflow the curated event's extra is passed as the run input `asset_event` of
`airflow dags test train` (it has no scheduler), which goes through the same
`operators.training_tasks.job_from_event` as a run the scheduler starts from the event.
"""
from __future__ import annotations

import json
import sys
from argparse import Namespace
from pathlib import Path

DEMO_STEPS = 6  # a few steps: the demo shows the loop, not a trained model


def train_from_event(home: Path | None, extra: dict, run_dir: Path) -> dict | None:
    """The `train` DAG via `airflow dags test` (home given) or its task functions in-process."""
    params = {"config": "demo", "steps": DEMO_STEPS, "out": str(run_dir), "asset_event": extra}
    if home is None:
        from operators import training_tasks

        job = training_tasks.job_from_event(training_tasks.event_extra(params, None, None), params, "demo")
        training_tasks.encode(job)
        return training_tasks.train(job)
    from curation.airflow_env import asset_events, dags_test

    print("running DAG `train` with `airflow dags test` on the curated asset event ...", flush=True)
    result = dags_test(home, "train", params)
    if result.returncode != 0:
        sys.stderr.write(result.stdout[-4000:] + result.stderr[-4000:])
        print("alchemist: error: the `train` DAG run failed (log above)", file=sys.stderr)
        return None
    return asset_events(home, "alchemist_model")[-1]


def demo_request(dataset: Path, out: Path) -> tuple[str, list[str]]:
    """A prompt and `--ref WORD=IMAGE` from the first clip with a reference image."""
    from curation.warehouse import read_table

    refs = read_table(dataset, "references").to_pylist()
    clips = {c["clip_key"]: c["caption"] for c in read_table(dataset, "clips").to_pylist()}
    if not refs:
        return "a video", []
    ref = refs[0]
    image = out / "reference.png"
    image.write_bytes(ref["rgba_png"])
    return clips[ref["clip_key"]], [f"{ref['word']}={image}"]


def sample_video(checkpoint: str, dataset: Path, out: Path) -> Path | None:
    from model.sample_cli import run_sample

    out.mkdir(parents=True, exist_ok=True)
    prompt, refs = demo_request(dataset, out)
    video = out / "sample.mp4"
    args = Namespace(checkpoint=checkpoint, prompt=prompt, ref=refs, background=[], frames=5, size="32x32",
                     steps=8, seed=0, device="cpu", out=str(video))
    return video if run_sample(args) == 0 else None


def continue_into_training(out: Path, dataset: Path, home: Path | None, extra: dict) -> int:
    import shutil

    shutil.rmtree(out / "model", ignore_errors=True)  # like the dataset: every demo starts afresh
    model = train_from_event(home, extra, out / "model")
    if model is None:
        return 1
    video = sample_video(model["checkpoint"], dataset, out / "sample")
    if video is None:
        return 1
    print(f"\nasset event: alchemist_model {json.dumps(model['metrics'])}")
    print(f"checkpoint: {model['checkpoint']}")
    print(f"loss curve: {model['loss_curve']}")
    print(f"sampled video: {video} (and {video.with_suffix('.png')})")
    return 0

"""Scale and overhead of a curation run (issues 9 and 13), each job in its own process.

  load test      20,000 manifest rows (and 2,000, for the bound) through ingest + entities
                 (spaCy), offline profile, on Ray: the demo's real sample videos repeated
                 under distinct ids, plus LOAD_BROKEN_SHARE broken rows (missing file, text
                 file, truncated video, empty caption, bad times) and LOAD_DUPLICATE_SHARE
                 duplicates. Checks every row is accounted for (a clip or exactly one
                 rejection) and reports the peak RSS of the driver and of the largest Ray
                 worker, sampled every RSS_SAMPLE_S; the bound is that neither grows with rows.
  warm stages    64 clips through the whole offline profile with `alchemist curate` (warm
                 stage actors, one local Ray) against the sum of the stages' compute
                 in-process (setup excluded), same clips, same run.
  actor start-up the CPU one warm actor has spent when ready, per offline stage alone and
                 for the light stages as one group (why they share an actor).

`python -m benchmark.scale_bench --rows N` runs one load job alone, `--actors` the start-up
probe (what `run()` spawns).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

LOAD_ROWS = (2_000, 20_000)
LOAD_SHARD_ROWS = 1_000  # manifest rows per shard in the load test (our choice)
LOAD_BROKEN_SHARE = 0.05
LOAD_DUPLICATE_SHARE = 0.05
WARM_CLIPS = 64
ACTOR_IDLE_S = 60.0  # the start-up probe's actors: stopped at once anyway
ACTOR_SETUP_S = 600.0  # generous: spaCy and TransNetV2 load in seconds
RSS_SAMPLE_S = 0.5
RSS_GROWTH_BOUND = 1.25  # the stated bound: peak RSS at 20,000 rows <= 1.25x that at 2,000
LOAD_STAGES = ("ingest", "entities")


def _row(metric: str, value, unit: str, notes: str) -> dict:
    return {"benchmark": "scale", "metric": metric, "value": value, "unit": unit, "notes": notes}


# --- Inputs ----------------------------------------------------------------------------------


def duplicate_rows(rows: int) -> int:
    """How many rows of a `rows`-row load manifest repeat the row before them."""
    every = round(1 / LOAD_DUPLICATE_SHARE)
    return sum(1 for i in range(2, rows) if i % every == 1)


def build_load_manifest(folder: Path, rows: int) -> Path:
    """`rows` manifest rows over the demo videos, with broken and duplicate rows mixed in."""
    import csv

    from curation.demo_data import build_demo_manifest

    with open(build_demo_manifest(folder)) as f:
        good = [(r["id"], r["video"], r["caption"]) for r in csv.DictReader(f)]
    bikes = folder / "videos" / "bikes.mp4"
    (folder / "videos" / "truncated.mp4").write_bytes(bikes.read_bytes()[: bikes.stat().st_size // 3])
    (folder / "videos" / "notes.mp4").write_text("not a video\n")
    broken = [("videos/missing.mp4", "A dog runs.", "", ""), ("videos/notes.mp4", "A dog runs.", "", ""),
              ("videos/truncated.mp4", "A man rides a bike.", "", ""),
              (good[0][1], "   ", "", ""), (good[0][1], "A man rides a bike.", "5", "2")]
    every_broken, every_duplicate = round(1 / LOAD_BROKEN_SHARE), round(1 / LOAD_DUPLICATE_SHARE)
    out = [("id", "video", "caption", "start", "end")]
    for i in range(rows):
        if i % every_broken == every_broken - 1:
            video, caption, start, end = broken[(i // every_broken) % len(broken)]
            out.append((f"broken-{i:06d}", video, caption, start, end))
        elif i % every_duplicate == 1 and i > 1:  # the row before again, in the same batch
            out.append(out[-1])
        else:
            name, video, caption = good[i % len(good)]
            out.append((f"{name}-{i:06d}", video, caption, "", ""))
    manifest = folder / "load.csv"
    with open(manifest, "w", newline="") as f:
        csv.writer(f).writerows(out)
    return manifest


# --- Peak RSS --------------------------------------------------------------------------------


class _TreeSampler:
    """Reads this process and its descendants every RSS_SAMPLE_S, in the background."""

    def __init__(self):
        import psutil

        self.me = psutil.Process()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        import psutil

        while not self._stop.wait(RSS_SAMPLE_S):
            self.read_self()
            for child in self.me.children(recursive=True):
                try:
                    self.read(child)
                except psutil.Error:
                    continue  # ended between listing and reading

    def read_self(self) -> None:
        pass

    def read(self, child) -> None:
        raise NotImplementedError


class PeakRSS(_TreeSampler):
    """Peak RSS of this process (the driver) and of its largest Ray worker (`ray::...`)."""

    def __init__(self):
        super().__init__()
        self.driver = self.worker = 0

    def read_self(self) -> None:
        self.driver = max(self.driver, self.me.memory_info().rss)

    def read(self, child) -> None:
        if child.name().startswith("ray::"):
            self.worker = max(self.worker, child.memory_info().rss)


class TreeCPU(_TreeSampler):
    """CPU seconds (user + system) of this process's descendants (a CLI run and its Ray
    processes), sampled because Ray's workers are never waited for; up to one sample's
    worth is missed per process. A measure of work done that a busy machine does not
    stretch, unlike wall time."""

    def __init__(self):
        super().__init__()
        self.seen: dict[int, float] = {}

    @property
    def seconds(self) -> float:
        return sum(self.seen.values())

    def read(self, child) -> None:
        times = child.cpu_times()
        self.seen[child.pid] = times.user + times.system


# --- One load job (in its own process) -------------------------------------------------------


def load_job(rows: int) -> dict:
    """Curate a `rows`-row manifest; counts, accounting and peak RSS as a dict."""
    import pyarrow.compute as pc

    from curation import warehouse
    from curation.config import STAGE_CLASSES, RunConfig
    from curation.runner import curate

    os.environ.pop("ALCHEMIST_RAY_ADDRESS", None)  # a Ray of its own, like a fresh CLI run
    folder = Path(tempfile.mkdtemp(prefix="alchemist-load-"))
    try:
        manifest = build_load_manifest(folder, rows)
        config = RunConfig(profile="offline", shard_size=LOAD_SHARD_ROWS,
                           skip=[s for s in STAGE_CLASSES if s not in LOAD_STAGES])
        start = time.monotonic()
        with PeakRSS() as rss:
            curate(manifest, folder / "ds", config)
        seconds = time.monotonic() - start
        clips = warehouse.read_table(folder / "ds", "clips")
        rejections = warehouse.read_table(folder / "ds", "rejections")
        row_level = rejections.filter(pc.is_in(rejections["level"], value_set=_levels("input", "clip")))
        outcomes = clips.num_rows + row_level.num_rows
        # A duplicate's rejection is keyed by its manifest row, so every key appears once.
        keys = clips["input_key"].to_pylist() + row_level["input_key"].to_pylist()
        duplicates = row_level.filter(pc.equal(row_level["reason"], "duplicate_input")).num_rows
        return {"rows": rows, "seconds": seconds, "clips": clips.num_rows,
                "rejected": row_level.num_rows, "accounted": outcomes == rows,
                "keys_once": len(keys) == len(set(keys)) and duplicates == duplicate_rows(rows),
                "driver_rss": rss.driver, "worker_rss": rss.worker}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _levels(*names: str):
    import pyarrow as pa

    return pa.array(names, pa.string())


def _spawn_load(rows: int) -> dict:
    done = subprocess.run([sys.executable, "-m", "benchmark.scale_bench", "--rows", str(rows)],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def load_rows() -> list[dict]:
    results = [_spawn_load(n) for n in LOAD_ROWS]
    small, large = results
    out = []
    for r in results:
        n = f"{r['rows']:,} rows"
        out += [
            _row(f"load {n}: wall time", r["seconds"], "s", f"ingest + entities, shards of {LOAD_SHARD_ROWS}"),
            _row(f"load {n}: rows/s", r["rows"] / r["seconds"], "rows/s", ""),
            _row(f"load {n}: every row accounted for", "yes" if r["accounted"] and r["keys_once"] else "NO",
                 "", f"{r['clips']} clips + {r['rejected']} input/clip rejections"),
            _row(f"load {n}: driver peak RSS", r["driver_rss"] / 2**20, "MiB", "sampled"),
            _row(f"load {n}: largest worker peak RSS", r["worker_rss"] / 2**20, "MiB", "sampled"),
        ]
    for who in ("driver", "worker"):
        growth = large[f"{who}_rss"] / small[f"{who}_rss"]
        verdict = "within" if growth <= RSS_GROWTH_BOUND else "OVER"
        out.append(_row(f"load: {who} peak RSS 20,000 / 2,000 rows", growth, "x",
                        f"{verdict} the stated bound {RSS_GROWTH_BOUND}x (memory does not grow with rows)"))
    return out


# --- Warm stages: curate wall time against the stages' compute -------------------------------


def build_clip_manifest(folder: Path, clips: int) -> Path:
    import csv

    from curation.demo_data import build_demo_manifest

    with open(build_demo_manifest(folder)) as f:
        good = [(r["id"], r["video"], r["caption"]) for r in csv.DictReader(f)]
    manifest = folder / "clips.csv"
    with open(manifest, "w", newline="") as f:
        csv.writer(f).writerows([("id", "video", "caption")] + [
            (f"{good[i % len(good)][0]}-{i:03d}", *good[i % len(good)][1:]) for i in range(clips)])
    return manifest


def stage_seconds(manifest: Path) -> tuple[dict[str, float], dict[str, float], float]:
    """Each offline stage's setup and compute over the manifest, in-process; and the CPU
    seconds of all the compute."""
    import resource

    from curation.config import RunConfig
    from curation.execute import apply_stage
    from curation.manifest import read_manifest
    from curation.profiles import build_stages

    rows = read_manifest(manifest)
    setup, compute, cpu = {}, {}, 0.0
    for stage in build_stages(RunConfig(profile="offline")):
        start = time.monotonic()
        stage.setup()
        setup[stage.name] = time.monotonic() - start
        before = resource.getrusage(resource.RUSAGE_SELF)
        rows = apply_stage(stage, rows)
        after = resource.getrusage(resource.RUSAGE_SELF)
        compute[stage.name] = time.monotonic() - start - setup[stage.name]
        cpu += after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return setup, compute, cpu


def warm_rows() -> list[dict]:
    folder = Path(tempfile.mkdtemp(prefix="alchemist-warm-"))
    try:
        manifest = build_clip_manifest(folder, WARM_CLIPS)
        env = {k: v for k, v in os.environ.items() if k != "ALCHEMIST_RAY_ADDRESS"}
        start = time.monotonic()
        with TreeCPU() as curate_cpu:
            subprocess.run([sys.executable, "-m", "curation.cli", "curate", "--manifest", str(manifest),
                            "--out", str(folder / "ds"), "--profile", "offline"],
                           env=env, check=True, capture_output=True)
        wall = time.monotonic() - start
        setup, compute, stages_cpu = stage_seconds(manifest)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    total = sum(compute.values())
    return [
        _row("warm: stages' setup (once per warm actor)", sum(setup.values()), "s",
             ", ".join(f"{k} {v:.1f}" for k, v in setup.items())),
        _row(f"warm: {WARM_CLIPS}-clip `alchemist curate` wall time", wall, "s",
             "offline profile, local Ray, warm stage actors, 2 shards in flight; includes "
             "start-up and publishing"),
        _row("warm: sum of the stages' compute", total, "s",
             ", ".join(f"{k} {v:.1f}" for k, v in compute.items()) + " (in-process, setup excluded)"),
        _row("warm: wall / stages' compute", wall / total, "x", "goal <= 1.15x (issue 13)"),
        _row("warm: CPU of `alchemist curate` / CPU of the stages' compute",
             curate_cpu.seconds / stages_cpu, "x",
             f"{curate_cpu.seconds:.0f} s (driver, Ray and every actor) / {stages_cpu:.0f} s "
             f"(in-process); what the 2 cores must do, whatever the machine's load"),
    ]


def actor_startup_cpu() -> dict[str, float]:
    """CPU seconds one warm actor has spent when it is ready (a Ray worker, the imports and
    setup()), for each offline stage alone and for the light ones as their group; on a Ray
    of its own, in this process (`python -m benchmark.scale_bench --actors`)."""
    import ray

    from curation.config import RunConfig
    from curation.profiles import build_stages
    from curation.stage_pool import StageGroup, StagePool, stage_groups, stop_stage_actors

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        stages = build_stages(RunConfig(profile="offline"))
        groups = [StageGroup((s,), i) for i, s in enumerate(stages)]
        groups += [g for g in stage_groups(stages) if len(g.stages) > 1]
        return {g.name: ray.get(StagePool(g, 0.1, ACTOR_IDLE_S, ACTOR_SETUP_S).actor(0)
                                .__ray_call__.remote(_own_cpu)) for g in groups}
    finally:
        stop_stage_actors()
        ray.shutdown()


def _own_cpu(_actor) -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def actor_rows() -> list[dict]:
    done = subprocess.run([sys.executable, "-m", "benchmark.scale_bench", "--actors"],
                          capture_output=True, text=True, check=True)
    cpu = json.loads(done.stdout.strip().splitlines()[-1])
    grouped = max(cpu, key=lambda name: name.count("+"))
    apart = sum(cpu[name] for name in grouped.split("+"))
    return [_row("warm: actor start-up CPU, each stage alone", sum(cpu[n] for n in cpu if "+" not in n), "s",
                 ", ".join(f"{n} {v:.2f}" for n, v in cpu.items() if "+" not in n)),
            _row("warm: light stages' start-up CPU, grouped / apart", cpu[grouped] / apart, "x",
                 f"{grouped}: {cpu[grouped]:.2f} s in one actor, {apart:.2f} s in {grouped.count('+') + 1}")]


def run() -> list[dict]:
    return actor_rows() + warm_rows() + load_rows()


def main() -> None:
    parser = argparse.ArgumentParser()
    job = parser.add_mutually_exclusive_group(required=True)
    job.add_argument("--rows", type=int)
    job.add_argument("--actors", action="store_true")
    args = parser.parse_args()
    print(json.dumps(actor_startup_cpu() if args.actors else load_job(args.rows)))


if __name__ == "__main__":
    main()

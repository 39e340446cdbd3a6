"""Warm stage actors: long-lived, named Ray actors that keep a stage's models loaded across
shards (docs/architecture.md "Warm stages and bounds").

An actor serves one stage, or a group of consecutive light stages (no model to load, no GPU,
at most LIGHT_MAX_CPUS: `stage_groups`), which share its process so that each does not pay for
a Python process, a Ray worker and its imports of its own. An actor is named
`<stage>[+<stage>...]-<settings hash>-<slot>` in the `alchemist` namespace and created detached
with `get_if_exists`, so every shard task that runs the same stages with the same resolved
settings and code version on one cluster finds it, whichever driver made it. Each stage's
`setup()` runs once, in the constructor; a call runs one stage. An actor nobody calls for
`idle_s` seconds ends itself (`__ray_terminate__`), so a finished job gives its CPUs and GPUs
back. A hung or dead actor is killed and replaced by the runner; that replacement is the only
extra `setup()`.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import re
import threading
import time
from typing import Any

import pyarrow as pa

from curation.errors import OperatorError
from curation.stage import Resources, Stage

NAMESPACE = "alchemist"  # Ray namespace of every stage actor
# A stage without a model that declares at most this many CPUs shares an actor with its light
# neighbours: its own process would cost more than its compute (docs/architecture.md, measured).
LIGHT_MAX_CPUS = 1.0
IDLE_CHECK_S = 5.0  # how often an actor looks at its idle clock (our choice)
DEATH_WAIT_S = 30.0  # how long a replacement waits for the killed actor's name to be freed


class StageSetupError(OperatorError, RuntimeError):
    """A stage's actor could not start (setup() raised or never finished): almost always a
    model that is not there, so the run ends at once with one line (exit code 2)."""


class MemberSetupError(RuntimeError):
    """Raised in an actor when one of its stages' setup() fails; its message is the line the
    driver shows (`StagePool._setup_failed`), naming that stage even inside a group."""


class StageWorker:
    """The body of one warm actor: each of its stages set up once, then batches (one stage
    per call) until idle too long."""

    def __init__(self, stages: list[Stage], idle_s: float, threads: int):
        from curation.execute import setup_line

        use_threads(threads)
        self.stages = stages
        for stage in stages:
            try:
                stage.ensure_setup()
            except Exception as e:
                raise MemberSetupError(setup_line(stage, e)) from e
        use_threads(threads)  # again, for a library that setup() imported with its own default
        self._last_used = time.monotonic()
        self._busy = 0
        threading.Thread(target=self._exit_when_idle, args=(idle_s,), daemon=True).start()

    def ready(self) -> bool:
        return True

    def run(self, batch: pa.Table, member: int = 0) -> tuple[pa.Table, int]:
        """Stage `member` of this actor over `batch` in slices of its batch size; also the row
        count, returned separately so the driver learns it without fetching the table."""
        from curation.execute import apply_stage

        self._busy += 1
        try:
            stage = self.stages[member]
            size = max(1, stage.resources.batch_size)
            parts = [apply_stage(stage, batch.slice(i, size))
                     for i in range(0, batch.num_rows, size)] or [apply_stage(stage, batch)]
            out = pa.concat_tables(parts, promote_options="default")
            return out, out.num_rows
        finally:
            self._busy -= 1
            self._last_used = time.monotonic()

    def _exit_when_idle(self, idle_s: float) -> None:
        import ray

        while True:
            time.sleep(min(IDLE_CHECK_S, idle_s))
            if not self._busy and time.monotonic() - self._last_used > idle_s:
                # Queued behind any call that arrived meanwhile, so it never cuts one short.
                ray.get_runtime_context().current_actor.__ray_terminate__.remote()
                return


def use_threads(threads: int) -> None:
    """Compute threads of this actor's process: torch's intra-op pool and FFmpeg's decoders
    (curation.video_io.decode_threads reads $OMP_NUM_THREADS)."""
    import os
    import sys

    os.environ["OMP_NUM_THREADS"] = str(threads)  # read by torch/libgomp when first imported
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def actor_threads(stage: Stage) -> int:
    """Threads for one actor of `stage` (a stage or a StageGroup): the CPUs it declares, at
    least 1, at most this node's.

    Not Ray's grant: on a small machine the runner scales every stage's reservation down so
    all of them fit (`execute.cpu_requests`), and Ray would then set OMP_NUM_THREADS=1 in every
    actor; the stage that declares 2 CPUs (TransNetV2) would run at half speed while the rest
    of the pipeline waits on it."""
    import os

    return max(1, min(round(stage.resources.cpus), len(os.sched_getaffinity(0))))


def settings_hash(stage: Stage) -> str:
    """A short hash of the stage's class, resolved settings and the code version."""
    from curation.fingerprint import code_version

    fields = {f.name: getattr(stage, f.name) for f in dataclasses.fields(stage)}
    ident = {"class": f"{type(stage).__module__}.{type(stage).__qualname__}",
             "settings": json.dumps(fields, sort_keys=True, default=_jsonable),
             "code": _cached(code_version)}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:12]


def is_light(stage: Stage) -> bool:
    """No model to load, no GPU, a small CPU share: a stage that may share an actor."""
    res = stage.resources
    return not stage.models_needed() and not res.gpus and res.cpus <= LIGHT_MAX_CPUS


@dataclasses.dataclass(frozen=True)
class StageGroup:
    """The stages one warm actor serves: one stage, or consecutive light ones. Its resources
    are its largest member's (the members run one call at a time, never together)."""

    stages: tuple[Stage, ...]
    first: int  # index of its first stage in the run's stage list

    @property
    def name(self) -> str:
        return "+".join(stage.name for stage in self.stages)

    @property
    def resources(self) -> Resources:
        asks = [stage.resources for stage in self.stages]
        return Resources(cpus=max(r.cpus for r in asks), gpus=max(r.gpus for r in asks),
                         batch_size=asks[0].batch_size, actors=max(r.actors for r in asks))


def stage_groups(stages: list[Stage]) -> list[StageGroup]:
    """The run's stages cut into actor groups, in order: each run of consecutive light stages
    is one group, every other stage a group of its own."""
    groups: list[StageGroup] = []
    for index, stage in enumerate(stages):
        last = groups[-1] if groups else None
        if last and is_light(stage) and all(is_light(s) for s in last.stages):
            groups[-1] = StageGroup((*last.stages, stage), last.first)
        else:
            groups.append(StageGroup((stage,), index))
    return groups


@functools.lru_cache(maxsize=None)
def _cached(fn) -> str:
    return fn()


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    return repr(value)


@dataclasses.dataclass
class StagePool:
    """The named actors of one stage group (one per `resources.actors` slot). `start()` asks
    for them without waiting, so every group's setup() runs at once and none holds up the
    driver; `actor(slot)` hands out a slot's actor once it is set up."""

    group: StageGroup
    num_cpus: float
    idle_s: float
    setup_timeout_s: float

    def __post_init__(self) -> None:
        hashes = "".join(settings_hash(stage) for stage in self.group.stages)
        digest = hashes if len(self.group.stages) == 1 else hashlib.sha256(hashes.encode()).hexdigest()[:12]
        self.key = f"{self.group.name}-{digest}"
        slots = max(1, self.group.resources.actors)
        self.actors: list[Any] = [None] * slots  # set up, ready for calls
        self.starting: list[_Starting | None] = [None] * slots

    def name(self, slot: int) -> str:
        return f"{self.key}-{slot}"

    def start(self) -> None:
        """Create (or find another driver's) actor for every empty slot; do not wait."""
        for slot, actor in enumerate(self.actors):
            if actor is None and self.starting[slot] is None:
                self.starting[slot] = self._create(slot)

    def _create(self, slot: int) -> "_Starting":
        import ray

        remote = ray.remote(StageWorker).options(
            name=self.name(slot), namespace=NAMESPACE, lifetime="detached",
            get_if_exists=True, max_restarts=0, max_task_retries=0,
            num_cpus=self.num_cpus, num_gpus=self.group.resources.gpus or None)
        handle = remote.remote(list(self.group.stages), self.idle_s, actor_threads(self.group))
        return _Starting(handle, handle.ready.remote(), time.monotonic() + self.setup_timeout_s)

    def setup_refs(self) -> list:
        """ObjectRefs that resolve when a starting actor's setup() ends (for `ray.wait`)."""
        return [s.ready for s in self.starting if s is not None]

    def setup_deadline(self) -> float:
        return min((s.deadline for s in self.starting if s is not None), default=float("inf"))

    def actor(self, slot: int, wait: bool = True):
        """The slot's actor once set up (created now if nobody asked for it yet); with
        `wait=False`, None while its setup() is still running. A setup that raised or ran out
        of `setup_timeout_s` ends the run (StageSetupError)."""
        import ray

        if self.actors[slot] is None:
            starting = self.starting[slot] = self.starting[slot] or self._create(slot)
            left = max(0.0, starting.deadline - time.monotonic())
            done, _ = ray.wait([starting.ready], timeout=left if wait else 0)
            if not done and (wait or not left):
                self._setup_failed(slot, f"stage {self.group.name!r} did not finish setup() "
                                         f"within {self.setup_timeout_s:g} s")
            if not done:
                return None
            try:
                ray.get(starting.ready)
            except ray.exceptions.RayActorError as e:
                self._setup_failed(slot, root_cause_line(e))
            self.actors[slot], self.starting[slot] = starting.handle, None
        return self.actors[slot]

    def _setup_failed(self, slot: int, line: str) -> None:
        import ray

        starting, self.starting[slot] = self.starting[slot], None
        ray.kill(starting.handle)
        marker = f"{MemberSetupError.__name__}: "
        if marker in line:  # the worker's own line, naming the member stage that failed
            line = line.split(marker, 1)[1]
        elif not line.startswith("stage "):  # died another way while setting up
            line = f"stage {self.group.name!r} failed in setup(): {line}"
        raise StageSetupError(line) from None

    def replace(self, slot: int) -> None:
        """Kill the slot's actor (hung or dead) and wait until its name is free; the next
        `actor(slot)` makes (or finds another driver's) replacement."""
        import ray

        handle, self.actors[slot] = self.actors[slot], None
        if handle is None:
            return
        ray.kill(handle, no_restart=True)
        deadline = time.monotonic() + DEATH_WAIT_S
        while time.monotonic() < deadline:
            try:
                ray.get(handle.ready.remote(), timeout=1.0)
            except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError):
                pass
            try:
                found = ray.get_actor(self.name(slot), namespace=NAMESPACE)
            except ValueError:
                return  # name free
            if found._actor_id != handle._actor_id:
                return  # another driver already replaced it
            time.sleep(0.2)


@dataclasses.dataclass
class _Starting:
    """An actor asked for and still in setup()."""

    handle: Any
    ready: Any  # ObjectRef of its `ready()` call, resolved when setup() has finished
    deadline: float  # monotonic time by which setup() must have finished


def stop_stage_actors() -> int:
    """Kill every stage actor on the cluster (end of a local job, tests); returns how many."""
    import ray

    if not ray.is_initialized():
        return 0
    stopped = 0
    for entry in ray.util.list_named_actors(all_namespaces=True):
        if entry["namespace"] != NAMESPACE:
            continue
        try:
            ray.kill(ray.get_actor(entry["name"], namespace=NAMESPACE), no_restart=True)
            stopped += 1
        except ValueError:
            pass  # it ended itself meanwhile
    return stopped


def root_cause_line(e: Exception) -> str:
    """The original exception's line from a Ray actor-creation error, whose text is Ray's
    preamble, the remote traceback, then `Type: message` of what setup() raised."""
    lines = [line.strip() for line in str(e).strip().splitlines() if line.strip()]
    raised = [line for line in lines if re.match(r"^[\w.]+(Error|Exception|Unavailable)\b.*:", line)]
    return raised[-1] if raised else first_line(e)


def first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__

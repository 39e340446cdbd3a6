"""Per-clip work of every model stage for a run configuration, and its GPU-seconds.

A stage's work is a list of (unit key, units per clip, batch); the unit's counted FLOPs and
bytes (measured.json) times the count give the stage's work per clip, and the roofline of
hardware.py its GPU-seconds. Stages without a model report CPU-seconds measured here."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

from curation.cost.counting import Count
from curation.cost.hardware import Gpu
from curation.stage import Stage


@dataclass(frozen=True)
class Corpus:
    """What an average input clip looks like, and the cost-only levers (no stage setting)."""

    clip_seconds: float = 8.5  # Panda-70M's mean clip length (Chen et al. 2024: 8.477 s)
    fps: float = 30.0  # typical web video
    entity_words: int = 3  # subject + object words localized per clip (our assumption)
    human_share: float = 0.5  # clips whose subject is a person: face detection on its 3 refs
    caption_chars: int = 120  # Panda-70M captions are ~13 words
    output_tokens: int = 40  # an entity dict, greedy (measured by the baseline)
    chars_per_token: float = 4.0  # rule of thumb for Llama/Mistral SentencePiece on English
    llm_batch: int = 256  # sequences decoded together (vLLM's default max_num_seqs)
    gdino_text_tokens: int = 16  # "woman . dog . hat ." with BERT's [CLS]/[SEP]
    gdino_size: tuple[int, int] = (750, 1333)  # a 16:9 frame after GroundingDINO's 800/1333 resize
    videomae_frames: int = 16  # VideoMAE-B's input; 8 needs a checkpoint trained on 8
    baseline_prompt_tokens: int = 250  # the baseline: Fig. 7 prompt, ~250 tokens


@dataclass(frozen=True)
class Work:
    unit: str  # a key of units.UNITS
    per_clip: float  # units per clip
    note: str = ""


@dataclass
class StageCost:
    stage: str
    model: str
    placement: str  # "gpu" or "cpu" (from the stage's resources)
    work: list[Work] = field(default_factory=list)
    count: Count = Count(0.0, 0.0)
    gpu_seconds: float = 0.0
    cpu_seconds: float | None = None  # stages without counted model work: measured on this machine


def clip_frames(corpus: Corpus) -> int:
    return round(corpus.clip_seconds * corpus.fps)


def prompt_tokens(corpus: Corpus, template_chars: int) -> int:
    return math.ceil((template_chars + corpus.caption_chars) / corpus.chars_per_token)


def _shots(stage, corpus: Corpus) -> list[Work]:
    # TransNetV2 infers 100-frame windows with a 50-frame stride (25 frames of context a side).
    return [Work("transnetv2.window", math.ceil(clip_frames(corpus) / 50), "100-frame windows")]


def _videomae(stage, corpus: Corpus) -> list[Work]:
    return [Work(f"videomae-base.clip:frames={corpus.videomae_frames}", 1.0)]


def _entities(stage, corpus: Corpus) -> list[Work]:
    if stage.backend not in ("vllm", "transformers"):
        return []
    from curation.entities.prompt import TEMPLATE

    shared_chars = TEMPLATE.index("{caption}")
    total = prompt_tokens(corpus, len(TEMPLATE) - len("{caption}"))
    cached = math.floor(shared_chars / corpus.chars_per_token) if getattr(stage, "prefix_caching", False) else 0
    return _llm(total - cached, cached, corpus)


def _llm(new: int, cached: int, corpus: Corpus) -> list[Work]:
    context = new + cached + corpus.output_tokens // 2  # mean context over the decode steps
    return [Work(f"mistral-7b.prefill:new={new},cached={cached}", 1.0,
                 f"{new} prompt tokens" + (f" + {cached} from the prefix cache" if cached else "")),
            Work(f"mistral-7b.decode:batch={corpus.llm_batch},context={context}",
                 corpus.output_tokens / corpus.llm_batch, f"{corpus.output_tokens} tokens, batch {corpus.llm_batch}")]


def _grounding(stage, corpus: Corpus) -> list[Work]:
    if stage.detector != "grounding_dino":
        return []
    h, w = corpus.gdino_size
    frames = getattr(stage, "detector_frames", 3)
    sam_id = stage.segmenter_model.rstrip("/").split("/")[-1]
    return [Work(f"grounding-dino-tiny.frame:h={h},w={w},text={corpus.gdino_text_tokens}", frames),
            Work(f"{sam_id}.image", 3.0, "image encoder, once per frame"),
            Work("sam.box", 3.0 * corpus.entity_words, "mask decoder per word and frame")]


def _faces(stage, corpus: Corpus) -> list[Work]:
    if stage.backend != "yolo":
        return []
    return [Work("yolov9c-face.image:size=640", 3.0 * corpus.human_share, "3 references of human subjects")]


LAMA_SIZE = 512  # the frame's middle, inpainted at SD's working size for a like-for-like count


def _background(stage, corpus: Corpus) -> list[Work]:
    if stage.backend == "lama":
        return [Work(f"big-lama.image:size={LAMA_SIZE}", 1.0, "one pass (FFTs not counted)")]
    if stage.backend != "sd":
        return []
    cfg = 2 if stage.guidance_scale > 1.0 else 1  # diffusers skips the unconditional branch at <= 1
    return [Work("sd2-inpaint.text", float(cfg), "prompt (and negative prompt)"),
            Work("sd2-inpaint.vae-encode", 1.0, "masked image"),
            Work(f"sd2-inpaint.unet:batch={cfg}", float(stage.steps), f"{stage.steps} steps"),
            Work("sd2-inpaint.vae-decode", 1.0)]


WORK: dict[str, Callable[[Stage, Corpus], list[Work]]] = {
    "shots": _shots, "videomae": _videomae, "entities": _entities, "grounding": _grounding,
    "faces": _faces, "background": _background,
}


BASELINE_CPU_STAGES = ("ingest", "frames")  # the baseline's CPU work: probing and frame sampling


def baseline_work(corpus: Corpus) -> dict[str, list[Work]]:
    """The issue's reference configuration: the paper's models at face value."""
    return {
        "shots": _shots(None, corpus),
        "videomae": [Work("videomae-base.clip:frames=16", 1.0)],
        "entities": _llm(corpus.baseline_prompt_tokens, 0, corpus),
        "grounding": [Work(f"grounding-dino-tiny.frame:h={corpus.gdino_size[0]},w={corpus.gdino_size[1]},"
                           f"text={corpus.gdino_text_tokens}", 3.0),
                      Work("sam-vit-huge.image", 3.0), Work("sam.box", 3.0 * corpus.entity_words)],
        "faces": [Work("yolov9c-face.image:size=640", 3.0 * corpus.human_share)],
        "background": [Work("sd2-inpaint.text", 2.0), Work("sd2-inpaint.vae-encode", 1.0),
                       Work("sd2-inpaint.unet:batch=2", 50.0, "50 steps"),
                       Work("sd2-inpaint.vae-decode", 1.0)],
    }


def price(stage_cost: StageCost, table: Callable[[str], Count], gpu: Gpu) -> StageCost:
    """Fill in the stage's counted work and GPU-seconds from the unit table."""
    total, seconds = Count(0.0, 0.0), 0.0
    for w in stage_cost.work:
        unit = table(w.unit)
        total += unit.scale(w.per_clip)
        seconds += gpu.seconds(unit) * w.per_clip
    stage_cost.count, stage_cost.gpu_seconds = total, seconds
    return stage_cost


def variant(stage: Stage) -> str:
    """`stage` or `stage:backend`: the key of a stage's measured CPU time."""
    choice = getattr(stage, "backend", None) or getattr(stage, "detector", None)
    return f"{stage.name}:{choice}" if choice else stage.name


def estimate(stages: list[Stage] | None, corpus: Corpus, gpu: Gpu,
             table: Callable[[str], Count], cpu_seconds: dict[str, dict]) -> list[StageCost]:
    """Per-stage cost of one clip; `stages=None` is the issue's baseline configuration."""
    if stages is None:
        cpu = [StageCost(name, name, "cpu", cpu_seconds=cpu_seconds[name]["seconds_per_clip"])
               for name in BASELINE_CPU_STAGES if name in cpu_seconds]
        return cpu + [price(StageCost(name, _models(work), "gpu", work), table, gpu)
                      for name, work in baseline_work(corpus).items()]
    costs = []
    for stage in stages:
        work = WORK[stage.name](stage, corpus) if stage.name in WORK else []
        placement = "gpu" if stage.resources.gpus > 0 else "cpu"
        cost = price(StageCost(stage.name, _models(work) or variant(stage), placement, work), table, gpu)
        measured = cpu_seconds.get(variant(stage))
        if not work and measured:  # counted model work is GPU work, wherever the profile puts it
            cost.cpu_seconds = measured["seconds_per_clip"]
        costs.append(cost)
    return costs


def _models(work: list[Work]) -> str:
    names = dict.fromkeys(w.unit.split(".")[0] for w in work)
    return " + ".join(names)

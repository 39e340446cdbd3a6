"""Entity extraction throughput on this machine (CPU).

  transformers    captions/s of the transformers backend (real Figure 7 prompt, chat template,
                  left-padded batched greedy `generate`, stop at "}") at batch sizes 1 and 16,
                  on the tiny Mistral fitted to three answers, so every caption gets a real
                  ~31-token answer rather than random tokens up to the length cap
  spacy           captions/s of the offline spaCy extractor on a batch of 64
  rules           captions/s of the A.2 post-processing alone (parse + spaCy tagging + rules),
                  i.e. the cost of re-applying rules to stored raw outputs
  quality         `alchemist eval-entities` on the labelled caption set (curation/entities/eval):
                  verdict accuracy and per-type precision/recall of the spaCy extractor on the
                  train and held-out parts (issue 11 targets on held-out: verdict accuracy and
                  subject recall >= 0.90), and of the transformers backend on the held-out part
                  with the tiny Mistral (fitted to three captions: it exercises the LLM path,
                  its numbers say nothing about Mistral-7B)
"""
from __future__ import annotations

import tempfile
from pathlib import Path

from benchmark.timing import best_of
from curation.entities.tiny import FIT_PAIRS

REPEATS = 3  # timed repetitions after one warm-up; the best is reported (noisy machine)
BENCH_THREADS = 1  # as model_bench: tiny models, and comparable numbers on a shared box
PAIRS = FIT_PAIRS



def _best(fn, repeats: int = REPEATS) -> float:
    return best_of(fn, repeats)


def _captions(n: int) -> list[str]:
    return [PAIRS[i % len(PAIRS)][0] for i in range(n)]


def _transformers_rows(model_dir: Path) -> list[dict]:
    from curation.entities.transformers_backend import TransformersExtractor, render

    rows = []
    for batch in (1, 16):
        ex = TransformersExtractor(model=str(model_dir), max_new_tokens=48, batch_size=batch)
        ex.setup()
        captions = _captions(16)
        seconds = _best(lambda: ex.extract(captions), repeats=2)
        prompt_tokens = len(ex.tokenizer(render(ex.tokenizer, captions[0])[0])["input_ids"])
        rows.append(dict(benchmark="entities.transformers", metric=f"captions/s batch {batch}",
                         value=len(captions) / seconds, unit="captions/s",
                         notes=f"tiny Mistral (2x64), {prompt_tokens}-token prompt, ~31 new "
                               f"tokens, greedy, {BENCH_THREADS} thread"))
    return rows


def _spacy_rows() -> list[dict]:
    from curation.entities.rules import apply_rules_batch
    from curation.entities.spacy_backend import SpacyExtractor

    ex = SpacyExtractor()
    ex.setup()
    captions = _captions(64)
    seconds = _best(lambda: ex.extract(captions))
    raws = ex.extract(captions)
    rules_seconds = _best(lambda: apply_rules_batch(captions, raws))
    return [
        dict(benchmark="entities.spacy", metric="captions/s batch 64", value=64 / seconds,
             unit="captions/s", notes=f"{ex.id} noun chunks + lexicon"),
        dict(benchmark="entities.rules", metric="captions/s batch 64", value=64 / rules_seconds,
             unit="captions/s", notes="A.2 rules on stored raw outputs (no extractor)"),
    ]


def _quality_rows(extractor, name: str, parts=("train", "heldout"), note: str = "",
                  metrics: tuple[str, ...] | None = None) -> list[dict]:
    from curation.entities.evaluate import evaluate, load_part

    rows = []
    for part in parts:
        score = evaluate(extractor, load_part(part))
        for metric, value in score.rates().items():
            if metrics is not None and metric not in metrics:
                continue
            rows.append(dict(benchmark=f"entities.quality.{name}", metric=f"{part} {metric}",
                             value=value, unit="fraction",
                             notes=f"{score.n} captions, {len(score.disagreements)} disagreements{note}"))
    return rows


def run() -> list[dict]:
    from curation.entities.spacy_backend import SpacyExtractor
    from curation.entities.tiny import fit_tiny_mistral, write_tiny_mistral
    from curation.entities.transformers_backend import TransformersExtractor
    from model.model_registry import torch_threads

    with torch_threads(BENCH_THREADS), tempfile.TemporaryDirectory() as tmp:
        model_dir = write_tiny_mistral(Path(tmp) / "tiny-mistral")
        fit_tiny_mistral(model_dir, PAIRS)
        rows = _transformers_rows(model_dir) + _spacy_rows()
        rows += _quality_rows(SpacyExtractor(), "spacy")
        tiny = TransformersExtractor(model=str(model_dir), max_new_tokens=48, batch_size=16)
        return rows + _quality_rows(tiny, "tiny-mistral", ("heldout",), "; path check only",
                                    metrics=("verdict_accuracy",))


if __name__ == "__main__":
    for row in run():
        print(row)

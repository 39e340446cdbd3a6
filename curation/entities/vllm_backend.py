"""The GPU path of LLM entity extraction (issue 4): an offline `vllm.LLM` engine inside the
stage's Ray actor (one engine per actor, holding `tensor_parallel_size` GPUs).

The whole batch goes to one `LLM.chat` call: each caption is `prompt.build_chat(caption)`,
rendered by the model's own chat template, exactly what the transformers backend renders, so
the two backends send byte-identical prompts. Decoding is constrained to JSON matching
`ENTITY_SCHEMA` (structured outputs), so invalid answers are rare; they still go through
the same parse + A.2 rules. vllm is imported in `setup()` only: importing Alchemist never
requires it. The exact GPU command is in curation/entities/README.md.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from curation.entities import prompt
from curation.entities.parse import KEYS
from curation.entities.transformers_backend import DEFAULT_MODEL

# The three entity lists, nothing else (Figure 7's dict as JSON).
ENTITY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {k: {"type": "array", "items": {"type": "string"}} for k in KEYS},
    "required": list(KEYS),
    "additionalProperties": False,
}


@dataclass
class VllmExtractor:
    model: str = DEFAULT_MODEL  # hub id or local directory
    tensor_parallel_size: int = 1  # GPUs per engine
    max_new_tokens: int = 128
    temperature: float = 0.0  # greedy
    top_p: float = 1.0
    seed: int = 0
    dtype: str | None = None  # None: vLLM's "auto"
    gpu_memory_utilization: float = 0.9
    max_model_len: int = 4096  # the few-shot prompt is ~1K tokens; caps KV-cache size
    prefix_caching: bool = False  # keep the shared instruction + examples' KV cache (cost lever)
    structured_output: bool = True  # JSON-schema-constrained decoding
    tokenizer_mode: str = "auto"  # the HF tokenizer + chat template, as the transformers backend
    prompt_hash: str = field(default_factory=prompt.prompt_hash)
    llm: Any = None  # the engine; tests inject a fake with the same `chat` method

    @property
    def id(self) -> str:
        return f"vllm:{self.model}"

    def setup(self) -> None:
        if self.llm is not None:
            return
        try:
            from vllm import LLM
        except ImportError:
            raise RuntimeError("the vllm entities backend needs vLLM on a CUDA machine: "
                               "`pip install -e .[gpu]`; use backend: transformers or spacy "
                               "elsewhere") from None
        self.llm = LLM(**self.engine_kwargs())

    def engine_kwargs(self) -> dict[str, Any]:
        from model import model_registry

        spec = model_registry.resolve(self.model)
        kwargs: dict[str, Any] = dict(
            model=spec.location, tensor_parallel_size=self.tensor_parallel_size,
            dtype=self.dtype or "auto", seed=self.seed, max_model_len=self.max_model_len,
            gpu_memory_utilization=self.gpu_memory_utilization, tokenizer_mode=self.tokenizer_mode,
            enable_prefix_caching=self.prefix_caching)
        if spec.revision:
            kwargs["revision"] = spec.revision
        return kwargs

    def sampling_params(self) -> Any:
        from vllm import SamplingParams

        kwargs: dict[str, Any] = dict(temperature=self.temperature, top_p=self.top_p,
                                      max_tokens=self.max_new_tokens, seed=self.seed)
        if self.structured_output:
            kwargs.update(structured_output_kwargs(ENTITY_SCHEMA))
        return SamplingParams(**kwargs)

    def requests(self, captions: list[str]) -> list[list[dict[str, str]]]:
        return [prompt.build_chat(c) for c in captions]

    def extract(self, captions: list[str]) -> list[str]:
        if self.llm is None:
            self.setup()
        outputs = self.llm.chat(self.requests(captions), sampling_params=self.sampling_params(),
                                use_tqdm=False)
        if len(outputs) != len(captions):
            raise RuntimeError(f"vLLM returned {len(outputs)} outputs for {len(captions)} prompts")
        return [output_text(o) for o in outputs]


def structured_output_kwargs(schema: dict) -> dict[str, Any]:
    """SamplingParams keywords for JSON-schema decoding, for current and older vLLM.

    vLLM >= 0.10.2 takes `structured_outputs=StructuredOutputsParams(json=...)`; the older
    `guided_decoding=GuidedDecodingParams(json=...)` was removed in 0.12.
    """
    try:
        from vllm.sampling_params import StructuredOutputsParams
    except ImportError:
        from vllm.sampling_params import GuidedDecodingParams

        return {"guided_decoding": GuidedDecodingParams(json=schema)}
    return {"structured_outputs": StructuredOutputsParams(json=schema)}


def output_text(request_output: Any) -> str | None:
    """The first completion's text of a `RequestOutput`; None when there is none."""
    outs = getattr(request_output, "outputs", None) or []
    return outs[0].text if outs else None

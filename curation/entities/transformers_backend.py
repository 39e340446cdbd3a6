"""The CPU path of LLM entity extraction (issue 4): the shared prompt through
`AutoModelForCausalLM.generate`, batched with left padding, greedy by default.

With a tokenizer that has a chat template (Mistral-7B-Instruct has one) the prompt is one user
turn (`prompt.build_chat`) rendered by that template, exactly what vLLM's `LLM.chat` renders;
otherwise it is the plain `prompt.build_prompt` text. Generation stops at the first "}" of
the answer (the entity dict has no nested braces) or at EOS. Tests run it on a tiny random
Mistral written by `curation.entities.tiny`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from curation.entities import prompt

DEFAULT_MODEL = "mistralai/Mistral-7B-Instruct-v0.3"  # paper A.2: Mistral 7B (Jiang et al., 2023)


def render(tokenizer: Any, caption: str) -> tuple[str, bool]:
    """(model input text, add_special_tokens) for one caption.

    A chat template writes the BOS token itself, so the text is then tokenized without
    adding special tokens; the plain prompt gets the tokenizer's own BOS.
    """
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(prompt.build_chat(caption), tokenize=False,
                                             add_generation_prompt=True)
        return text, False
    return prompt.build_prompt(caption), True


@dataclass
class TransformersExtractor:
    model: str = DEFAULT_MODEL  # hub id, local directory (model.model_registry spec)
    max_new_tokens: int = 128  # a dict of a caption's entities is < 80 Mistral tokens
    batch_size: int = 16  # captions per generate() call (the stage's batch is split)
    do_sample: bool = False  # greedy: the same caption gives the same entities
    temperature: float = 1.0  # used only when do_sample
    top_p: float = 1.0  # used only when do_sample
    seed: int = 0
    device: str = "auto"  # model.model_registry.device(): cuda when present
    dtype: str | None = None  # e.g. "bfloat16" on GPU; None: the checkpoint's own
    stop_at_brace: bool = True  # end each answer at its first "}"
    prompt_hash: str = field(default_factory=prompt.prompt_hash)

    def __post_init__(self) -> None:
        self.tokenizer = self.lm = None

    @property
    def id(self) -> str:
        return f"transformers:{self.model}"

    def setup(self) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from model import model_registry

        self.tokenizer = model_registry.load(AutoTokenizer, self.model)
        self.tokenizer.padding_side = "left"  # decoder-only: prompts end where generation starts
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        dtype = getattr(torch, self.dtype) if self.dtype else None
        self.lm = model_registry.load(AutoModelForCausalLM, self.model, device=model_registry.device(self.device),
                              dtype=dtype)

    def extract(self, captions: list[str]) -> list[str]:
        if self.lm is None:
            self.setup()
        out: list[str] = []
        for i in range(0, len(captions), self.batch_size):
            out.extend(self._generate(captions[i:i + self.batch_size]))
        return out

    def _generate(self, captions: list[str]) -> list[str]:
        import torch

        rendered = [render(self.tokenizer, c) for c in captions]
        enc = self.tokenizer([t for t, _ in rendered], return_tensors="pt", padding=True,
                             add_special_tokens=rendered[0][1]).to(self.lm.device)
        kwargs: dict[str, Any] = dict(max_new_tokens=self.max_new_tokens, do_sample=self.do_sample,
                                      pad_token_id=self.tokenizer.pad_token_id)
        if self.do_sample:
            torch.manual_seed(self.seed)
            kwargs.update(temperature=self.temperature, top_p=self.top_p)
        if self.stop_at_brace:
            kwargs.update(stop_strings=["}"], tokenizer=self.tokenizer)
        with torch.inference_mode():
            ids = self.lm.generate(**enc, **kwargs)  # (B, prompt + new)
        new = ids[:, enc["input_ids"].shape[1]:]
        return self.tokenizer.batch_decode(new, skip_special_tokens=True)

"""Conditioning inputs and the personalization embedding f (paper 3.2, "Binding of Image and
Word Concept").

For each reference image n: image tokens x_n (l x c) from the frozen image encoder; the word
tokens w_n of its entity word, taken from the prompt's text embeddings, flattened and
zero-padded or cropped to K tokens; w_n repeated l times and concatenated with x_n along
channels; a linear projection; a residual connection with x_n; plus a learnable index
embedding of the reference slot. f = Concat(f_1, ..., f_N), with a mask over padded slots.
Subjects with several references and the background image are all references with their words.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from einops import rearrange, repeat
from torch import nn

from model.config import DiTConfig

# ---------------------------------------------------------------------------------------
# Conditioning inputs
# ---------------------------------------------------------------------------------------


@dataclass
class Conditioning:
    text: torch.Tensor  # (B, L, Dt) prompt token embeddings from the frozen text encoder
    text_mask: torch.Tensor  # (B, L) bool, True for real tokens
    ref_tokens: torch.Tensor  # (B, R, l, c) image tokens of each reference slot
    ref_mask: torch.Tensor  # (B, R) bool, True for real references, False for padded slots
    word_index: torch.Tensor  # (B, R, K) long: token positions of each slot's word, -1 = pad

    def _map(self, fn) -> "Conditioning":
        return Conditioning(**{f.name: fn(getattr(self, f.name)) for f in fields(self)})

    def to(self, device) -> "Conditioning":
        return self._map(lambda v: v.to(device))

    def repeat(self, n: int) -> "Conditioning":
        """n copies stacked along the batch: the branches of a guided forward."""
        return self._map(lambda v: torch.cat([v] * n, dim=0))

    @property
    def batch_size(self) -> int:
        return self.text.shape[0]


def word_index_tensor(positions: list[list[list[int]]], k: int) -> torch.Tensor:
    """positions[b][r] = token positions of slot r's word -> (B, R, K), cropped or -1 padded."""
    batch, refs = len(positions), max((len(p) for p in positions), default=0)
    index = torch.full((batch, refs, k), -1, dtype=torch.long)
    for b, slots in enumerate(positions):
        for r, pos in enumerate(slots):
            pos = list(pos)[:k]
            index[b, r, : len(pos)] = torch.tensor(pos, dtype=torch.long)
    return index


# ---------------------------------------------------------------------------------------
# Personalization embedding
# ---------------------------------------------------------------------------------------


class PersonalizationEmbedder(nn.Module):
    def __init__(self, cfg: DiTConfig):
        super().__init__()
        c, k = cfg.image_dim, cfg.word_tokens
        self.use_words, self.max_refs = cfg.binding == "word", cfg.max_refs
        self.proj = nn.Linear(c + k * cfg.text_dim if self.use_words else c, c)
        self.index = nn.Parameter(torch.randn(cfg.max_refs, c) * 0.02)

    def gather_words(self, text, word_index):  # (B, L, Dt), (B, R, K)
        """Each slot's word tokens, flattened to one vector; padded positions are zeros."""
        rows = torch.arange(text.shape[0], device=text.device)[:, None, None]
        words = text[rows, word_index.clamp(min=0)]  # (B, R, K, Dt)
        words = words * (word_index >= 0)[..., None].to(words.dtype)
        return rearrange(words, "b r k d -> b r (k d)")  # (B, R, K*Dt)

    def bind(self, cond: Conditioning):
        """The projection's input: [x_n, w_n repeated l times] along channels."""
        x = cond.ref_tokens  # (B, R, l, c)
        if not self.use_words:
            return x
        words = self.gather_words(cond.text, cond.word_index)  # (B, R, K*Dt)
        words = repeat(words, "b r d -> b r l d", l=x.shape[2])
        return torch.cat([x, words.to(x.dtype)], dim=-1)  # (B, R, l, c + K*Dt)

    def forward(self, cond: Conditioning):
        x = cond.ref_tokens  # (B, R, l, c)
        refs, tokens = x.shape[1], x.shape[2]
        if refs > self.max_refs:
            raise ValueError(f"{refs} references exceed max_refs={self.max_refs}")
        f = x + self.proj(self.bind(cond))  # (B, R, l, c), residual with x_n
        f = f + self.index[:refs][None, :, None, :]  # slot n's index embedding
        mask = repeat(cond.ref_mask, "b r -> b (r l)", l=tokens)  # (B, R*l)
        f = rearrange(f, "b r l c -> b (r l) c") * mask[..., None].to(f.dtype)
        return f, mask  # (B, R*l, c), (B, R*l)

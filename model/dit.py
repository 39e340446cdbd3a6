"""The personalization DiT (paper 3.2, Figure 3, B.1, Table 5).

Read top to bottom: helpers, embedders (patches, timesteps, 3D RoPE), attention, the block,
the final layer, the model. Each block is: self-attention with 3D RoPE, cross-attention to
the text tokens, cross-attention to the personalization tokens f, and an MLP, each modulated
by the timestep through adaptive LayerNorm (shift, scale, gate; DiT's adaLN-Zero).

Axes: B batch, C latent channels, F frames, H height, W width (latent), N video tokens,
D width, L text tokens, M personalization tokens, E conditioning width.
"""
from __future__ import annotations

import math
from dataclasses import replace

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from model.config import DiTConfig
from model.personalization import Conditioning, PersonalizationEmbedder

# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------


def layer_norm(dim: int, fused: bool) -> nn.Module:
    """Affine-free LayerNorm (adaLN supplies scale and shift); apex's fused kernel if present."""
    if fused:
        try:
            from apex.normalization import FusedLayerNorm

            return FusedLayerNorm(dim, eps=1e-6, elementwise_affine=False)
        except ImportError:
            pass
    return nn.LayerNorm(dim, eps=1e-6, elementwise_affine=False)


REF_ADA_INIT_STD = 0.02  # ours: the GPT-2 / DiT initialisation scale of linear layers
REFERENCE_PATH = ("personalization.", "ref_proj.", ".ref_attn.", ".ref_ada.")  # parameter names


def is_reference_path(name: str) -> bool:
    """Parameters of the personalization path (paper B.2 stage II trains only these)."""
    return name.startswith(REFERENCE_PATH[:2]) or any(part in name for part in REFERENCE_PATH[2:])


def modulate(x, shift, scale):  # (B, N, D), (B, D), (B, D)
    return x * (1 + scale[:, None]) + shift[:, None]


# ---------------------------------------------------------------------------------------
# Embedders
# ---------------------------------------------------------------------------------------


class TimestepEmbedder(nn.Module):
    """Sinusoidal features of t in [0, 1] (scaled to DiT's 0..1000 range) -> an MLP."""

    def __init__(self, dim: int, freq_dim: int = 256):
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t):  # (B,)
        half = self.freq_dim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
        args = 1000.0 * t.float()[:, None] * freqs[None]  # (B, half)
        return self.mlp(torch.cat([args.cos(), args.sin()], dim=-1))  # (B, E)


def rope_axis_dims(head_dim: int) -> tuple[int, int, int]:
    """Split a head's channels over (frames, height, width), each an even number."""
    hw = 2 * (head_dim // 6)
    return head_dim - 2 * hw, hw, hw


class Rope3D(nn.Module):
    """Rotary position embedding over the (frame, row, column) of each token (RoFormer)."""

    def __init__(self, head_dim: int, theta: float):
        super().__init__()
        self.dims, self.theta = rope_axis_dims(head_dim), theta

    def angles(self, positions):  # (N, 3) float positions -> (N, head_dim / 2)
        parts = []
        for axis, dim in enumerate(self.dims):
            inv_freq = self.theta ** (-torch.arange(0, dim, 2, device=positions.device) / dim)
            parts.append(positions[:, axis, None].float() * inv_freq[None])
        return torch.cat(parts, dim=-1)

    def forward(self, grid: tuple[int, int, int], device):
        f, h, w = (torch.arange(n, device=device) for n in grid)
        positions = torch.stack(torch.meshgrid(f, h, w, indexing="ij"), dim=-1).reshape(-1, 3)
        return self.angles(positions)  # (N, head_dim / 2)


def apply_rope(x, angles):  # (B, heads, N, hd), (N, hd / 2)
    x = rearrange(x.float(), "... (d two) -> ... d two", two=2)
    cos, sin = angles.cos(), angles.sin()
    x1, x2 = x[..., 0], x[..., 1]
    out = torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)
    return rearrange(out, "... d two -> ... (d two)")


# ---------------------------------------------------------------------------------------
# Attention (scaled-dot-product attention: flash kernels on GPU)
# ---------------------------------------------------------------------------------------


def window_mask(num_tokens: int, window: int | None, device):
    """Centered band: token i attends to j when |i - j| <= window / 2 (paper Table 5)."""
    if window is None or num_tokens <= window // 2 + 1:
        return None  # the band covers every pair: plain full attention
    idx = torch.arange(num_tokens, device=device)
    return (idx[:, None] - idx[None, :]).abs() <= window // 2  # (N, N)


class SelfAttention(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)

    def forward(self, x, angles, mask=None):  # (B, N, D)
        q, k, v = rearrange(self.qkv(x), "b n (three h d) -> three b h n d", three=3, h=self.heads)
        q, k = apply_rope(q, angles).to(v.dtype), apply_rope(k, angles).to(v.dtype)
        x = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, h, N, d)
        return self.out(rearrange(x, "b h n d -> b n (h d)"))  # (B, N, D)


class CrossAttention(nn.Module):
    """Video tokens attend to condition tokens; masked keys (padding) contribute nothing."""

    def __init__(self, width: int, cond_width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(width, width)
        self.kv = nn.Linear(cond_width, 2 * width)
        self.out = nn.Linear(width, width)

    def forward(self, x, ctx, mask):  # (B, N, D), (B, M, E), (B, M) bool
        q = rearrange(self.q(x), "b n (h d) -> b h n d", h=self.heads)
        k, v = rearrange(self.kv(ctx), "b m (two h d) -> two b h m d", two=2, h=self.heads)
        # A sample with no valid key at all (no references) gets a zero update, not NaNs.
        has_any = mask.any(dim=-1)  # (B,)
        safe = mask | ~has_any[:, None]
        x = F.scaled_dot_product_attention(q, k, v, attn_mask=safe[:, None, None, :])
        x = self.out(rearrange(x, "b h n d -> b n (h d)"))  # (B, N, D)
        return x * has_any[:, None, None].to(x.dtype)


# ---------------------------------------------------------------------------------------
# Block and final layer
# ---------------------------------------------------------------------------------------


class DiTBlock(nn.Module):
    SUBLAYERS = 4  # self-attention, text cross-attention, reference cross-attention, MLP
    REF = 2  # index of the reference cross-attention among the sublayers

    def __init__(self, cfg: DiTConfig):
        super().__init__()
        d, e = cfg.width, cfg.cond_width
        self.norms = nn.ModuleList(layer_norm(d, cfg.fused_layernorm) for _ in range(self.SUBLAYERS))
        self.attn = SelfAttention(d, cfg.heads)
        self.text_attn = CrossAttention(d, e, cfg.heads)
        self.ref_attn = CrossAttention(d, e, cfg.heads)
        hidden = int(d * cfg.mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(d, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, d))
        self.drop = nn.Dropout(cfg.dropout)  # paper Table 7 "dropout 0.1", on each sublayer's output
        # shift, scale, gate of the backbone's sublayers; adaLN-Zero: they start as the identity.
        self.ada = nn.Linear(e, 3 * (self.SUBLAYERS - 1) * d)
        nn.init.zeros_(self.ada.weight)
        nn.init.zeros_(self.ada.bias)
        # The reference sublayer has its own modulation, trained with the reference path in
        # stage II (paper B.2) while `ada` stays frozen. A zero gate would block every gradient
        # to that path at the first step; small weights keep it open. Without references the
        # sublayer adds exactly zero, so stage I still starts from the identity.
        self.ref_ada = nn.Linear(e, 3 * d)
        nn.init.normal_(self.ref_ada.weight, std=REF_ADA_INIT_STD)
        nn.init.zeros_(self.ref_ada.bias)

    def modulations(self, c):  # (B, E) -> SUBLAYERS x (shift, scale, gate), each (B, D)
        c = F.silu(c)
        backbone = self.ada(c).chunk(3 * (self.SUBLAYERS - 1), dim=-1)
        mods = [backbone[3 * i : 3 * i + 3] for i in range(self.SUBLAYERS - 1)]
        mods.insert(self.REF, self.ref_ada(c).chunk(3, dim=-1))
        return mods

    def forward(self, x, c, angles, window, text, text_mask, refs, ref_mask):  # x (B, N, D)
        sublayers = (
            lambda h: self.attn(h, angles, window),
            lambda h: self.text_attn(h, text, text_mask),
            lambda h: self.ref_attn(h, refs, ref_mask),
            self.mlp,
        )
        for norm, layer, (shift, scale, gate) in zip(self.norms, sublayers, self.modulations(c)):
            x = x + gate[:, None] * self.drop(layer(modulate(norm(x), shift, scale)))  # (B, N, D)
        return x


class FinalLayer(nn.Module):
    def __init__(self, cfg: DiTConfig, out_dim: int):
        super().__init__()
        self.norm = layer_norm(cfg.width, cfg.fused_layernorm)
        self.ada = nn.Linear(cfg.cond_width, 2 * cfg.width)
        self.linear = nn.Linear(cfg.width, out_dim)
        for layer in (self.ada, self.linear):  # DiT: the model starts by predicting zero
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x, c):  # (B, N, D), (B, E)
        shift, scale = self.ada(F.silu(c)).chunk(2, dim=-1)
        return self.linear(modulate(self.norm(x), shift, scale))  # (B, N, p*C)


# ---------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------


class DiT(nn.Module):
    """Predicts the rectified-flow velocity of a latent clip given t, text and references.

    `keep_text` / `keep_image` (B,) zero the prompt tokens / all of f per sample: the
    conditioning dropout of training (paper B.2) and the unconditional branches of guidance.
    `self_cond` is a previous estimate of the clean latent (paper Table 5), zeros if absent.
    """

    def __init__(self, cfg: DiTConfig):
        super().__init__()
        self.cfg = cfg
        pf, ph, pw = cfg.patch_size
        self.patch_volume = pf * ph * pw
        in_ch = cfg.in_channels * (2 if cfg.self_conditioning else 1)
        self.x_embed = nn.Linear(self.patch_volume * in_ch, cfg.width)
        self.t_embed = TimestepEmbedder(cfg.cond_width)
        self.text_proj = nn.Linear(cfg.text_dim, cfg.cond_width)
        self.personalization = PersonalizationEmbedder(cfg)
        self.ref_proj = nn.Linear(cfg.image_dim, cfg.cond_width)
        self.rope = Rope3D(cfg.head_dim, cfg.rope_theta)
        self.blocks = nn.ModuleList(DiTBlock(cfg) for _ in range(cfg.depth))
        self.final = FinalLayer(cfg, self.patch_volume * cfg.in_channels)

    def patchify(self, x):  # (B, C, F, H, W) -> (B, N, p*C)
        pf, ph, pw = self.cfg.patch_size
        return rearrange(x, "b c (f pf) (h ph) (w pw) -> b (f h w) (pf ph pw c)", pf=pf, ph=ph, pw=pw)

    def unpatchify(self, x, grid):  # (B, N, p*C) -> (B, C, F, H, W)
        (pf, ph, pw), (f, h, w) = self.cfg.patch_size, grid
        return rearrange(
            x, "b (f h w) (pf ph pw c) -> b c (f pf) (h ph) (w pw)", f=f, h=h, w=w, pf=pf, ph=ph, pw=pw
        )

    def grid(self, shape) -> tuple[int, int, int]:
        (f, h, w), p = shape[-3:], self.cfg.patch_size
        if f % p[0] or h % p[1] or w % p[2]:
            raise ValueError(f"latent size {(f, h, w)} is not divisible by patch size {p}")
        return f // p[0], h // p[1], w // p[2]

    def embed_conditions(self, cond: Conditioning, keep_text, keep_image):
        text = cond.text * keep_text[:, None, None].to(cond.text.dtype)  # (B, L, Dt)
        # f reads the word tokens from the text: a dropped text must not reach it that way.
        f, f_mask = self.personalization(replace(cond, text=text))  # (B, M, c)
        f = f * keep_image[:, None, None].to(f.dtype)  # dropping the image zeroes all of f
        return self.text_proj(text), cond.text_mask, self.ref_proj(f), f_mask

    def forward(self, x, t, cond: Conditioning, keep_text=None, keep_image=None, self_cond=None):
        b = x.shape[0]
        ones = torch.ones(b, device=x.device)
        keep_text = ones if keep_text is None else keep_text
        keep_image = ones if keep_image is None else keep_image
        if self.cfg.self_conditioning:
            x_in = torch.cat([x, torch.zeros_like(x) if self_cond is None else self_cond], dim=1)
        else:
            x_in = x
        grid = self.grid(x.shape)
        tokens = self.x_embed(self.patchify(x_in))  # (B, N, D)
        angles = self.rope(grid, x.device)  # (N, hd / 2)
        window = window_mask(tokens.shape[1], self.cfg.window_size, x.device)
        c = self.t_embed(t)  # (B, E)
        text, text_mask, refs, ref_mask = self.embed_conditions(cond, keep_text, keep_image)
        for block in self.blocks:
            tokens = block(tokens, c, angles, window, text, text_mask, refs, ref_mask)
        return self.unpatchify(self.final(tokens, c), grid)  # (B, C, F, H, W)


def expected_parameter_count(cfg: DiTConfig) -> int:
    """Closed-form parameter count of `DiT(cfg)`, to check the paper preset on the meta device."""
    d, e, p = cfg.width, cfg.cond_width, math.prod(cfg.patch_size)
    hidden, lin = int(d * cfg.mlp_ratio), lambda i, o: i * o + o
    in_ch = cfg.in_channels * (2 if cfg.self_conditioning else 1)
    cross = lin(d, d) + lin(e, 2 * d) + lin(d, d)
    block = lin(d, 3 * d) + lin(d, d) + 2 * cross + lin(d, hidden) + lin(hidden, d) + lin(e, 12 * d)
    words = cfg.word_tokens * cfg.text_dim if cfg.binding == "word" else 0
    embed = lin(p * in_ch, d) + lin(256, e) + lin(e, e) + lin(cfg.text_dim, e) + lin(cfg.image_dim, e)
    personal = lin(cfg.image_dim + words, cfg.image_dim) + cfg.max_refs * cfg.image_dim
    final = lin(e, 2 * d) + lin(d, p * cfg.in_channels)
    return embed + personal + cfg.depth * block + final

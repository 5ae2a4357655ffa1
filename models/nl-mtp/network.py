"""NL-MTP network: a per-molecule token transformer with a time-zero barrier and low-rank fast weights.

Each molecule is the token sequence ``[ENV] [CONTEXT: x] [A: exposure] <TIME0> [DO: W += delta] <PROBE>``.
The attention mask is causal up to and including TIME0 (so the CONTEXT token, which feeds the propensity
head, never sees the exposure A) and no token at or before TIME0 sees a token after it
(the time-zero barrier); tokens after TIME0 see every token.

Fast weights ("LoR"): on the chosen layers the Q, K, O projections and the MLP output projection carry a
rank-r update, ``W_adapted = W + alpha(x, delta) * U V``, applied functionally as
``x W^T + alpha * (x V^T) U^T`` in the policy world only and only at the post-TIME0 positions, so the
base weights are never modified and the pre-TIME0 history is the same in both worlds.  ``alpha`` is a
per-molecule gate in [0, 1] computed from the CONTEXT token's representation at the input of the first
LoR layer (a pre-TIME0 representation) and the size of the shift.
"""
from __future__ import annotations

import math
from typing import Iterable, Optional

import torch
import torch.nn.functional as F
from torch import nn

ENV, CONTEXT, EXPOSURE, TIME0, DO, PROBE = range(6)
N_TOKENS = 6


def time_zero_mask(n_tokens: int = N_TOKENS, time0: int = TIME0) -> torch.Tensor:
    """Boolean (T, T) attention mask, True = may attend: causal up to TIME0, nothing pre sees post."""
    allowed = torch.ones(n_tokens, n_tokens, dtype=torch.bool)
    for i in range(time0 + 1):
        allowed[i, i + 1 :] = False
    return allowed


def clip_layers(layers: Iterable[int], n_layers: int) -> list[int]:
    """LoR layer indices clipped to the layers that exist (tiny configs), sorted and unique."""
    return sorted({min(max(int(l), 0), n_layers - 1) for l in layers})


class LoRLinear(nn.Module):
    """A linear layer with an optional gated rank-r fast-weight update ``W + gate * U V``."""

    def __init__(self, d_in: int, d_out: int, rank: int = 0) -> None:
        super().__init__()
        self.base = nn.Linear(d_in, d_out)
        if rank > 0:
            self.U = nn.Parameter(torch.randn(d_out, rank) * 0.02)
            self.V = nn.Parameter(torch.randn(rank, d_in) / math.sqrt(d_in))
        else:
            self.register_parameter("U", None)
            self.register_parameter("V", None)

    def forward(self, x: torch.Tensor, gate: Optional[torch.Tensor] = None) -> torch.Tensor:
        out = self.base(x)
        if gate is not None and self.U is not None:
            out = out + gate * F.linear(F.linear(x, self.V), self.U)
        return out

    def delta_frobenius(self) -> torch.Tensor:
        """||U V||_F without forming U V: trace(V^T U^T U V) = sum((U^T U) * (V V^T))."""
        sq = ((self.U.t() @ self.U) * (self.V @ self.V.t())).sum()
        return torch.sqrt(sq.clamp_min(1e-12))


class Block(nn.Module):
    """Pre-norm transformer layer; Q, K, O and the MLP output may carry fast weights."""

    def __init__(self, d: int, n_heads: int, d_ff: int, dropout: float, rank: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.q, self.k, self.o = LoRLinear(d, d, rank), LoRLinear(d, d, rank), LoRLinear(d, d, rank)
        self.v = nn.Linear(d, d)
        self.fc1 = nn.Linear(d, d_ff)
        self.fc2 = LoRLinear(d_ff, d, rank)
        self.drop = nn.Dropout(dropout)
        self.p_attn = dropout

    def lor_modules(self) -> list[LoRLinear]:
        return [m for m in (self.q, self.k, self.o, self.fc2) if m.U is not None]

    def forward(self, h: torch.Tensor, mask: torch.Tensor, gate: Optional[torch.Tensor]) -> torch.Tensor:
        B, T, D = h.shape
        x = self.ln1(h)
        heads = lambda t: t.view(B, T, self.n_heads, D // self.n_heads).transpose(1, 2)  # noqa: E731
        att = F.scaled_dot_product_attention(heads(self.q(x, gate)), heads(self.k(x, gate)), heads(self.v(x)),
                                             attn_mask=mask, dropout_p=self.p_attn if self.training else 0.0)
        h = h + self.drop(self.o(att.transpose(1, 2).reshape(B, T, D), gate))
        return h + self.drop(self.fc2(self.drop(F.gelu(self.fc1(self.ln2(h)))), gate))


class NLMTP(nn.Module):
    def __init__(self, n_context: int, n_envs: int = 16, d_model: int = 512, n_layers: int = 12, n_heads: int = 8,
                 d_ff: int = 2048, lor_layers: Iterable[int] = (3, 7, 11), lor_rank: int = 4,
                 n_components: int = 8, n_desc: int = 8, dropout: float = 0.1) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model {d_model} must be divisible by n_heads {n_heads}")
        self.lor_layers = clip_layers(lor_layers, n_layers)
        self.env_emb = nn.Embedding(n_envs, d_model)
        self.ctx_proj = nn.Sequential(nn.Linear(n_context, d_model), nn.LayerNorm(d_model))
        self.a_proj = nn.Linear(1, d_model)
        self.do_proj = nn.Linear(1, d_model)
        self.token_emb = nn.Parameter(torch.randn(N_TOKENS, d_model) * 0.02)  # type/position; TIME0, PROBE content
        self.blocks = nn.ModuleList(
            Block(d_model, n_heads, d_ff, dropout, lor_rank if i in self.lor_layers else 0) for i in range(n_layers))
        self.alpha_net = nn.Sequential(nn.Linear(d_model + 1, d_model // 4), nn.GELU(), nn.Linear(d_model // 4, 1))
        self.ln_f = nn.LayerNorm(d_model)
        self.outcome = nn.Sequential(nn.Linear(d_model, d_model), nn.GELU(), nn.Linear(d_model, 1))
        self.mdn = nn.Linear(d_model, 3 * n_components)
        self.desc_delta = nn.Linear(d_model, n_desc)
        self.register_buffer("mask", time_zero_mask(), persistent=False)

    def lor_modules(self) -> list[LoRLinear]:
        return [m for b in self.blocks for m in b.lor_modules()]

    def embed(self, ctx: torch.Tensor, env: torch.Tensor, a: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        zeros = torch.zeros(ctx.shape[0], self.token_emb.shape[1], device=ctx.device, dtype=self.token_emb.dtype)
        tokens = [self.env_emb(env), self.ctx_proj(ctx), self.a_proj(a[:, None]), zeros,
                  self.do_proj(delta[:, None]), zeros]
        return torch.stack(tokens, dim=1) + self.token_emb

    def forward(self, ctx: torch.Tensor, env: torch.Tensor, a: torch.Tensor, delta: float | torch.Tensor,
                policy: bool, tokens: Optional[torch.Tensor] = None) -> dict[str, torch.Tensor]:
        """One world: ``policy=False`` (fast weights off, DO carries delta=0) or ``True`` (fast weights on).

        ``tokens`` replaces the embedded sequence (tests use it to perturb single tokens).
        """
        B = ctx.shape[0]
        delta = torch.as_tensor(delta, dtype=ctx.dtype, device=ctx.device)
        delta = delta.expand(B) if delta.dim() == 0 else delta
        d_token = delta if policy else torch.zeros_like(delta)
        h = self.embed(ctx, env, a, d_token) if tokens is None else tokens
        post = (torch.arange(N_TOKENS, device=h.device) > TIME0).to(h.dtype)[None, :, None]
        gate = alpha = None
        for i, block in enumerate(self.blocks):
            if policy and i == self.lor_layers[0]:
                alpha = torch.sigmoid(self.alpha_net(torch.cat([h[:, CONTEXT], d_token[:, None]], dim=-1)))
                gate = alpha[:, :, None] * post
            h = block(h, self.mask, gate if i in self.lor_layers else None)
        h = self.ln_f(h)
        return {
            "m": self.outcome(h[:, PROBE]).squeeze(-1),
            "mdn": self.mdn(h[:, CONTEXT]),
            "desc": self.desc_delta(h[:, PROBE]),
            "alpha": alpha.squeeze(-1) if alpha is not None else None,
            "hidden": h,
        }


def mixture_log_prob(params: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """log g(a | x) of the Gaussian mixture whose raw parameters (B, 3K) come from the mdn head."""
    logits, mu, raw_sigma = params.chunk(3, dim=-1)
    sigma = F.softplus(raw_sigma) + 1e-3
    comp = -0.5 * ((a[:, None] - mu) / sigma) ** 2 - torch.log(sigma) - 0.5 * math.log(2 * math.pi)
    return torch.logsumexp(F.log_softmax(logits, dim=-1) + comp, dim=-1)

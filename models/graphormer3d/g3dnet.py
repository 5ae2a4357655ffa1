"""Graphormer-3D (Shi et al. 2022, "Benchmarking Graphormer on large-scale molecular modeling datasets").

Follows fairseq's examples/graphormer/graphormer_3d.py (the OC20 model): a Gaussian basis of every pairwise
distance (with a learned affine map per element pair) gives a per-head attention bias and, summed over
neighbours, an addition to each atom's element embedding; pre-LayerNorm transformer layers attend over all
atoms of a molecule (no cutoff, no neighbour cap; padded atoms are masked as keys); a final LayerNorm and a
two-layer per-atom head are pooled.  OC20's tag embeddings and the node (force) head are left out (no tags,
no forces here).  Pooling is the kit's readout table (``boom_kit.readout.Pool``): sum or mean of atomic
outputs, a dipole |sum_i q_i (r_i - r_cm)| of neutral atomic charges, or the electronic spatial extent
sum_i softplus(o_i) |r_i - r_cm|^2.  Attention spans every atom of the input, so two far-apart copies of a
molecule in one input are not two molecules to the encoder; the readout itself is exactly extensive.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from boom_kit.geometry import ELEMENTS
from boom_kit.readout import Pool


def gaussian(x, mean, std):
    a = math.sqrt(2 * math.pi)
    return torch.exp(-0.5 * (((x - mean) / std) ** 2)) / (a * std)


class GaussianLayer(nn.Module):
    def __init__(self, K: int, edge_types: int) -> None:
        super().__init__()
        self.K = K
        self.means = nn.Embedding(1, K)
        self.stds = nn.Embedding(1, K)
        self.mul = nn.Embedding(edge_types, 1)
        self.bias = nn.Embedding(edge_types, 1)
        nn.init.uniform_(self.means.weight, 0, 3)
        nn.init.uniform_(self.stds.weight, 0, 3)
        nn.init.constant_(self.bias.weight, 0)
        nn.init.constant_(self.mul.weight, 1)

    def forward(self, dist, edge_types):
        x = self.mul(edge_types).squeeze(-1) * dist + self.bias(edge_types).squeeze(-1)
        x = x.unsqueeze(-1).expand(*x.shape, self.K)
        return gaussian(x, self.means.weight.view(-1), self.stds.weight.view(-1).abs() + 1e-5)


class NonLinear(nn.Module):
    def __init__(self, n_in: int, n_out: int, hidden: int | None = None) -> None:
        super().__init__()
        hidden = hidden or n_in
        self.layer1, self.layer2 = nn.Linear(n_in, hidden), nn.Linear(hidden, n_out)

    def forward(self, x):
        return self.layer2(F.gelu(self.layer1(x)))


class SelfMultiheadAttention(nn.Module):
    def __init__(self, embed: int, heads: int, dropout: float) -> None:
        super().__init__()
        if embed % heads:
            raise ValueError(f"embed_dim {embed} is not divisible by attention_heads {heads}")
        self.heads, self.head_dim, self.dropout = heads, embed // heads, dropout
        self.scaling = self.head_dim ** -0.5
        self.in_proj = nn.Linear(embed, 3 * embed)
        self.out_proj = nn.Linear(embed, embed)

    def forward(self, x, attn_bias):
        b, n, e = x.shape
        q, k, v = self.in_proj(x).view(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        w = (q * self.scaling) @ k.transpose(-1, -2) + attn_bias  # [b, h, n, n]
        w = F.dropout(torch.softmax(w, dim=-1), p=self.dropout, training=self.training)
        return self.out_proj((w @ v).transpose(1, 2).reshape(b, n, e))


class EncoderLayer(nn.Module):
    """Pre-LN transformer layer (Graphormer3DEncoderLayer)."""

    def __init__(self, embed: int, ffn: int, heads: int, dropout: float, attn_dropout: float) -> None:
        super().__init__()
        self.dropout = dropout
        self.self_attn = SelfMultiheadAttention(embed, heads, attn_dropout)
        self.self_attn_layer_norm = nn.LayerNorm(embed)
        self.fc1, self.fc2 = nn.Linear(embed, ffn), nn.Linear(ffn, embed)
        self.final_layer_norm = nn.LayerNorm(embed)

    def forward(self, x, attn_bias):
        x = x + F.dropout(self.self_attn(self.self_attn_layer_norm(x), attn_bias), p=self.dropout, training=self.training)
        h = self.fc2(F.gelu(self.fc1(self.final_layer_norm(x))))
        return x + F.dropout(h, p=self.dropout, training=self.training)


class Graphormer3D(nn.Module):
    def __init__(self, embed: int = 256, layers: int = 6, heads: int = 16, ffn: int = 256, blocks: int = 1,
                 num_kernel: int = 128, dropout: float = 0.1, attn_dropout: float = 0.1, input_dropout: float = 0.0,
                 readout: str = "sum", atom_scale: float = 1.0, extent_scale: float = 1.0) -> None:
        super().__init__()
        self.pool = Pool(readout, atom_scale, extent_scale)
        self.atom_types = len(ELEMENTS) + 1  # 0 = padding
        self.blocks, self.input_dropout = blocks, input_dropout
        self.out_dropout = 0.1  # fixed in graphormer_3d.py (F.dropout(output, p=0.1)) before the energy head
        self.atom_encoder = nn.Embedding(self.atom_types, embed, padding_idx=0)
        self.gbf = GaussianLayer(num_kernel, self.atom_types ** 2)
        self.bias_proj = NonLinear(num_kernel, heads)
        self.edge_proj = nn.Linear(num_kernel, embed)
        self.layers = nn.ModuleList([EncoderLayer(embed, ffn, heads, dropout, attn_dropout) for _ in range(layers)])
        self.final_ln = nn.LayerNorm(embed)
        self.energy_proj = NonLinear(embed, 1)

    def atomic(self, atoms, pos, mask):
        """atoms [B,N] element index + 1 (0 = padding), pos [B,N,3], mask [B,N] -> atomic outputs [B,N]."""
        b, n = atoms.shape
        pad = ~mask
        dist = torch.cdist(pos, pos)
        edge_type = atoms.view(b, n, 1) * self.atom_types + atoms.view(b, 1, n)
        gbf = self.gbf(dist, edge_type)                                    # [B,N,N,K]
        edge_features = gbf.masked_fill(pad.view(b, 1, n, 1), 0.0)
        x = self.atom_encoder(atoms) + self.edge_proj(edge_features.sum(dim=-2))
        x = F.dropout(x, p=self.input_dropout, training=self.training)
        bias = self.bias_proj(gbf).permute(0, 3, 1, 2)                     # [B,H,N,N]
        bias = bias.masked_fill(pad.view(b, 1, 1, n), float("-inf"))
        for _ in range(self.blocks):
            for layer in self.layers:
                x = layer(x, bias)
        x = self.final_ln(x)
        x = F.dropout(x, p=self.out_dropout, training=self.training)
        return self.energy_proj(x).squeeze(-1)

    def readout(self, atomic, atoms, pos, mask):
        """Pool atomic outputs [B,N] of the real atoms by the kit's readout -> [B] (scaled units)."""
        b = atoms.shape[0]
        batch = torch.arange(b, device=atoms.device).unsqueeze(1).expand_as(mask)[mask]
        return self.pool(atomic[mask], batch, b, element=atoms[mask] - 1, pos=pos[mask])

    def forward(self, atoms, pos, mask):
        """atoms [B,N] element index + 1 (0 = padding), pos [B,N,3], mask [B,N] -> [B]."""
        return self.readout(self.atomic(atoms, pos, mask), atoms, pos, mask)

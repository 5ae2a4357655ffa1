"""The Equivariant Transformer of TorchMD-Net (Thölke & De Fabritiis, ICLR 2022) in plain torch.

Follows torchmdnet/models/torchmd_et.py, utils.py (ExpNormalSmearing, CosineCutoff, NeighborEmbedding)
and output_modules.py (GatedEquivariantBlock, EquivariantScalar / DipoleMoment / ElectronicSpatialExtent)
layer by layer; message passing (PyG ``propagate`` + torch-scatter there) is written out as gathers and
``index_add_``.  Edges: every ordered pair of atoms of a molecule closer than the cutoff, at most
``max_neighbors`` per receiving atom (the nearest ones, ties by atom index; TorchMD-Net's
``max_num_neighbors``, default 32), plus self loops (``Distance(loop=True)`` in TorchMD-Net);
``edge_vec = pos[j] - pos[i]`` for the message j -> i, unit length except for self loops (zero).
The molecular readout is the kit's (``boom_kit.readout.Pool``): sum / mean of atomic scalars, a dipole of
neutral atomic charges plus atomic vectors, or the electronic spatial extent sum_i q_i |r_i - r_cm|^2.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from boom_kit.geometry import ELEMENTS
from boom_kit.pointcloud import scatter_sum
from boom_kit.readout import Pool


class CosineCutoff(nn.Module):
    def __init__(self, cutoff: float) -> None:
        super().__init__()
        self.cutoff = cutoff

    def forward(self, d: torch.Tensor) -> torch.Tensor:
        return 0.5 * (torch.cos(d * math.pi / self.cutoff) + 1.0) * (d < self.cutoff).to(d.dtype)


class ExpNormalSmearing(nn.Module):
    """PhysNet's exponential-normal radial basis, trainable means/betas, times the cosine cutoff."""

    def __init__(self, cutoff: float, num_rbf: int, trainable: bool = True) -> None:
        super().__init__()
        self.cutoff_fn = CosineCutoff(cutoff)
        self.alpha = 5.0 / cutoff
        start = math.exp(-cutoff)
        means = torch.linspace(start, 1.0, num_rbf)
        betas = torch.full((num_rbf,), (2.0 / num_rbf * (1.0 - start)) ** -2)
        if trainable:
            self.means, self.betas = nn.Parameter(means), nn.Parameter(betas)
        else:
            self.register_buffer("means", means)
            self.register_buffer("betas", betas)

    def forward(self, d: torch.Tensor) -> torch.Tensor:
        d = d.unsqueeze(-1)
        return self.cutoff_fn(d) * torch.exp(-self.betas * (torch.exp(-self.alpha * d) - self.means) ** 2)


class NeighborEmbedding(nn.Module):
    """x_i <- W [x_i, sum_j emb(z_j) * (W_d rbf(d_ij)) * cutoff(d_ij)] over neighbours j != i."""

    def __init__(self, hidden: int, num_rbf: int, cutoff: float, n_elements: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(n_elements, hidden)
        self.distance_proj = nn.Linear(num_rbf, hidden)
        self.combine = nn.Linear(2 * hidden, hidden)
        self.cutoff = CosineCutoff(cutoff)

    def forward(self, z, x, src, dst, d, rbf):
        keep = src != dst
        src, dst, d, rbf = src[keep], dst[keep], d[keep], rbf[keep]
        w = self.distance_proj(rbf) * self.cutoff(d).unsqueeze(-1)
        msg = self.embedding(z)[src] * w
        return self.combine(torch.cat([x, scatter_sum(msg, dst, x.shape[0])], dim=-1))


class EquivariantMultiHeadAttention(nn.Module):
    def __init__(self, hidden: int, num_rbf: int, heads: int, cutoff: float) -> None:
        super().__init__()
        if hidden % heads:
            raise ValueError(f"hidden_channels {hidden} is not divisible by num_heads {heads}")
        self.hidden, self.heads, self.head_dim = hidden, heads, hidden // heads
        self.layernorm = nn.LayerNorm(hidden)
        self.act = nn.SiLU()
        self.attn_act = nn.SiLU()
        self.cutoff = CosineCutoff(cutoff)
        self.q_proj = nn.Linear(hidden, hidden)
        self.k_proj = nn.Linear(hidden, hidden)
        self.v_proj = nn.Linear(hidden, 3 * hidden)
        self.o_proj = nn.Linear(hidden, 3 * hidden)
        self.vec_proj = nn.Linear(hidden, 3 * hidden, bias=False)
        self.dk_proj = nn.Linear(num_rbf, hidden)       # distance_influence="both"
        self.dv_proj = nn.Linear(num_rbf, 3 * hidden)
        for lin in (self.q_proj, self.k_proj, self.v_proj, self.o_proj, self.dk_proj, self.dv_proj):
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)
        nn.init.xavier_uniform_(self.vec_proj.weight)

    def forward(self, x, vec, src, dst, d, rbf, unit):
        n, h, hd = x.shape[0], self.heads, self.head_dim
        x = self.layernorm(x)
        q = self.q_proj(x).view(n, h, hd)
        k = self.k_proj(x).view(n, h, hd)
        v = self.v_proj(x).view(n, h, 3 * hd)
        vec1, vec2, vec3 = torch.split(self.vec_proj(vec), self.hidden, dim=-1)
        vec_dot = (vec1 * vec2).sum(dim=1)
        dk = self.act(self.dk_proj(rbf)).view(-1, h, hd)
        dv = self.act(self.dv_proj(rbf)).view(-1, h, 3 * hd)
        # messages j (src) -> i (dst)
        attn = (q[dst] * k[src] * dk).sum(dim=-1)
        attn = self.attn_act(attn) * self.cutoff(d).unsqueeze(-1)
        xm, v1, v2 = torch.split(v[src] * dv, hd, dim=-1)
        xm = xm * attn.unsqueeze(-1)
        vec_j = vec.view(n, 3, h, hd)[src]
        vm = vec_j * v1.unsqueeze(1) + v2.unsqueeze(1) * unit.view(-1, 3, 1, 1)
        x_agg = scatter_sum(xm, dst, n).view(n, self.hidden)
        vec_agg = scatter_sum(vm, dst, n).view(n, 3, self.hidden)
        o1, o2, o3 = torch.split(self.o_proj(x_agg), self.hidden, dim=-1)
        dx = vec_dot * o2 + o3
        dvec = vec3 * o1.unsqueeze(1) + vec_agg
        return dx, dvec


class GatedEquivariantBlock(nn.Module):
    """Schütt et al. (PaiNN) gated block: scalars gate vectors, vector norms feed scalars."""

    def __init__(self, hidden: int, out: int, scalar_activation: bool = False) -> None:
        super().__init__()
        self.out = out
        self.vec1_proj = nn.Linear(hidden, hidden, bias=False)
        self.vec2_proj = nn.Linear(hidden, out, bias=False)
        self.update_net = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.SiLU(), nn.Linear(hidden, 2 * out))
        self.act = nn.SiLU() if scalar_activation else None
        nn.init.xavier_uniform_(self.vec1_proj.weight)
        nn.init.xavier_uniform_(self.vec2_proj.weight)
        for lin in (self.update_net[0], self.update_net[2]):
            nn.init.xavier_uniform_(lin.weight)
            nn.init.zeros_(lin.bias)

    def forward(self, x, v):
        buf = self.vec1_proj(v)
        nonzero = (buf != 0).flatten(1).any(dim=1)  # zero vectors: no NaN gradient through the norm
        vec1 = torch.zeros(buf.shape[0], buf.shape[2], dtype=buf.dtype, device=buf.device)
        vec1[nonzero] = torch.linalg.vector_norm(buf[nonzero], dim=-2)
        vec2 = self.vec2_proj(v)
        x, gate = torch.split(self.update_net(torch.cat([x, vec1], dim=-1)), self.out, dim=-1)
        v = gate.unsqueeze(1) * vec2
        if self.act is not None:
            x = self.act(x)
        return x, v


class EquivariantTransformer(nn.Module):
    """ET representation + TorchMD-Net's gated equivariant output network, pooled by the kit's readout.

    ``readout``: "sum"/"mean" (EquivariantScalar, pooled), "dipole" (EquivariantDipoleMoment: |sum_i q_i
    (r_i - c) + mu_i| with neutral q, c the centre of mass), "extent" (EquivariantElectronicSpatialExtent:
    sum_i softplus(q_i) |r_i - c|^2).  ``atom_scale``/``extent_scale`` come from ``readout.pool_scales``.
    """

    def __init__(self, hidden: int = 256, layers: int = 8, heads: int = 8, num_rbf: int = 64,
                 cutoff: float = 5.0, readout: str = "sum", atom_scale: float = 1.0, extent_scale: float = 1.0,
                 max_neighbors: int = 32) -> None:
        super().__init__()
        if max_neighbors < 1:
            raise ValueError(f"max_neighbors must be at least 1, got {max_neighbors}")
        self.cutoff, self.max_neighbors = cutoff, int(max_neighbors)
        self.pool = Pool(readout, atom_scale, extent_scale)
        self.readout = readout
        n_el = len(ELEMENTS)
        self.embedding = nn.Embedding(n_el, hidden)
        self.distance_expansion = ExpNormalSmearing(cutoff, num_rbf)
        self.neighbor_embedding = NeighborEmbedding(hidden, num_rbf, cutoff, n_el)
        self.attention_layers = nn.ModuleList(
            [EquivariantMultiHeadAttention(hidden, num_rbf, heads, cutoff) for _ in range(layers)])
        self.out_norm = nn.LayerNorm(hidden)
        self.output_network = nn.ModuleList([GatedEquivariantBlock(hidden, hidden // 2, scalar_activation=True),
                                             GatedEquivariantBlock(hidden // 2, 1)])

    def edges(self, pos, batch):
        """(src, dst): pairs within the cutoff in the same molecule, the ``max_neighbors`` nearest per
        receiver ``dst`` (ties broken by atom index), plus every self loop (plain torch)."""
        n = pos.shape[0]
        dist = torch.cdist(pos, pos)
        eye = torch.eye(n, dtype=torch.bool, device=pos.device)
        mask = (batch[:, None] == batch[None, :]) & (dist < self.cutoff) & ~eye
        if n and int(mask.sum(1).max()) > self.max_neighbors:
            far = dist.masked_fill(~mask, float("inf"))
            order = torch.sort(far, dim=1, stable=True).indices[:, : self.max_neighbors]
            capped = torch.zeros_like(mask).scatter_(1, order, True)
            mask = mask & capped
        dst, src = (mask | eye).nonzero(as_tuple=True)
        return src, dst

    def forward(self, z, pos, batch, n_mols: int):
        src, dst = self.edges(pos, batch)
        vec_ij = pos[src] - pos[dst]
        loop = src == dst
        d = torch.linalg.vector_norm(vec_ij, dim=-1)
        unit = torch.where(loop.unsqueeze(-1), torch.zeros_like(vec_ij), vec_ij / d.clamp_min(1e-9).unsqueeze(-1))
        rbf = self.distance_expansion(d)
        x = self.embedding(z)
        x = self.neighbor_embedding(z, x, src, dst, d, rbf)
        vec = torch.zeros(x.shape[0], 3, x.shape[1], dtype=x.dtype, device=x.device)
        for attn in self.attention_layers:
            dx, dvec = attn(x, vec, src, dst, d, rbf, unit)
            x, vec = x + dx, vec + dvec
        x = self.out_norm(x)
        for block in self.output_network:
            x, vec = block(x, vec)
        # x: [A,1] atomic scalars, vec: [A,3,1] atomic vectors (used by the dipole readout only)
        return self.pool(x.squeeze(-1), batch, n_mols, element=z, pos=pos,
                         vec=vec.squeeze(-1) if self.readout == "dipole" else None)

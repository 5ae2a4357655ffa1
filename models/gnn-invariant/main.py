"""BOOM's invariant GNN: bond-graph message passing plus a global distance-aware update (E(3)-invariant).

Each block: h <- LayerNorm(GCL(h) + G(h)), where GCL is the bond-graph layer of the topological GNN and
G is a global update over every ordered atom pair (i, j) of a molecule,
G(h)_i = LayerNorm(mean_j W(rbf(|r_i - r_j|)) * phi(h_j)),
a learned filter of Gaussian-expanded distances (BOOM used the raw distance matrix normalised by its row
sums).  Only distances enter, so predictions are invariant to rotations, reflections and translations.
Bond-graph atoms are the geometry's atoms (``boom_kit.graphs.graph_from_geometry``).
"""
import torch
from torch import nn

import boom_kit
from boom_kit import graphs


class GlobalDistanceUpdate(nn.Module):
    def __init__(self, hidden: int, n_rbf: int) -> None:
        super().__init__()
        self.filter = graphs.mlp(n_rbf, hidden, hidden)
        self.proj = graphs.mlp(hidden, hidden, hidden)
        self.norm = nn.LayerNorm(hidden)

    def forward(self, h: torch.Tensor, pair_index: torch.Tensor, rbf: torch.Tensor) -> torch.Tensor:
        i, j = pair_index
        return self.norm(graphs.scatter_mean(self.filter(rbf) * self.proj(h)[j], i, h.shape[0]))


class InvariantEncoder(nn.Module):
    def __init__(self, hidden: int, layers: int, n_rbf: int, rbf_max: float) -> None:
        super().__init__()
        self.n_rbf, self.rbf_max = n_rbf, rbf_max
        self.embed = graphs.AtomEmbedding(hidden)
        self.bond_embed = nn.Linear(graphs.N_BOND_FEATURES, hidden)
        self.bond_layers = nn.ModuleList(graphs.BondMessageLayer(hidden) for _ in range(layers))
        self.global_layers = nn.ModuleList(GlobalDistanceUpdate(hidden, n_rbf) for _ in range(layers))
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(layers))

    def forward(self, b: graphs.GraphBatch) -> torch.Tensor:
        i, j = b.pair_index
        rbf = graphs.gaussian_rbf((b.pos[i] - b.pos[j]).norm(dim=-1), self.n_rbf, self.rbf_max)
        h, e = self.embed(b), self.bond_embed(b.edge_attr)
        for bond, glob, norm in zip(self.bond_layers, self.global_layers, self.norms):
            h = norm(bond(h, b.edge_index, e) + glob(h, b.pair_index, rbf))
        return h


def fit_predict(ctx: boom_kit.Context) -> boom_kit.Output:
    layers, n_rbf, rbf_max = ctx.param("layers"), ctx.param("n_rbf"), ctx.param("rbf_max")
    return graphs.train_and_predict(ctx, lambda hidden: InvariantEncoder(hidden, layers, n_rbf, rbf_max),
                                    with_geometry=True, with_pairs=True)


if __name__ == "__main__":
    boom_kit.run(fit_predict)

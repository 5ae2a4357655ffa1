"""E(n)-equivariant graph neural network (Satorras, Hoogeboom & Welling, ICML 2021).

Layer l on the fully connected molecule (every ordered atom pair i != j, typed by its bond or "none"):
    m_ij = a_ij * phi_e(h_i, h_j, rbf(|x_i - x_j|), type_ij),   a_ij = sigmoid(w . m_ij)   (edge inference)
    x_i <- x_i + mean_j (x_i - x_j) / (|x_i - x_j| + 1) * phi_x(m_ij)                    (learned, equivariant)
    h_i <- h_i + phi_h(h_i, sum_j m_ij / norm_factor)
The coordinate update is learned (BOOM's code added a fixed normalised shift); it is skipped in the last
layer, where no later layer would read the coordinates.  h only ever sees distances, so predictions are
E(3)-invariant; the dipole head for mu uses the input positions.
"""
import torch
from torch import nn

import boom_kit
from boom_kit import graphs


class EGNNLayer(nn.Module):
    def __init__(self, hidden: int, n_rbf: int, rbf_max: float, norm_factor: float, update_coords: bool) -> None:
        super().__init__()
        self.n_rbf, self.rbf_max, self.norm_factor = n_rbf, rbf_max, norm_factor
        self.edge_mlp = graphs.mlp(2 * hidden + n_rbf + graphs.NO_BOND + 1, hidden, hidden, final_act=True)
        self.attention = nn.Sequential(nn.Linear(hidden, 1), nn.Sigmoid())
        self.node_mlp = graphs.mlp(2 * hidden, hidden, hidden)
        self.coord_mlp = None
        if update_coords:
            last = nn.Linear(hidden, 1, bias=False)
            nn.init.xavier_uniform_(last.weight, gain=0.001)  # start near the identity map (EGNN reference code)
            self.coord_mlp = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), last)

    def forward(self, h, x, pair_index, pair_attr):
        i, j = pair_index
        diff = x[i] - x[j]
        d = diff.norm(dim=-1, keepdim=True)
        m = self.edge_mlp(torch.cat([h[i], h[j], graphs.gaussian_rbf(d.squeeze(-1), self.n_rbf, self.rbf_max), pair_attr], -1))
        m = m * self.attention(m)
        if self.coord_mlp is not None:
            x = x + graphs.scatter_mean(diff / (d + 1.0) * self.coord_mlp(m), i, x.shape[0])
        h = h + self.node_mlp(torch.cat([h, graphs.scatter_sum(m, i, h.shape[0]) / self.norm_factor], -1))
        return h, x


class EGNNEncoder(nn.Module):
    def __init__(self, hidden: int, layers: int, n_rbf: int, rbf_max: float, norm_factor: float) -> None:
        super().__init__()
        self.embed = graphs.AtomEmbedding(hidden)
        self.layers = nn.ModuleList(
            EGNNLayer(hidden, n_rbf, rbf_max, norm_factor, update_coords=k < layers - 1) for k in range(layers))

    def forward(self, b: graphs.GraphBatch) -> torch.Tensor:
        h, x = self.embed(b), b.pos
        pair_attr = nn.functional.one_hot(b.pair_type, graphs.NO_BOND + 1).to(h.dtype)
        for layer in self.layers:
            h, x = layer(h, x, b.pair_index, pair_attr)
        return h


def make_encoder(ctx: boom_kit.Context):
    layers, n_rbf = ctx.param("layers"), ctx.param("n_rbf")
    rbf_max, norm_factor = ctx.param("rbf_max"), ctx.param("norm_factor")
    return lambda hidden: EGNNEncoder(hidden, layers, n_rbf, rbf_max, norm_factor)


def fit_predict(ctx: boom_kit.Context) -> boom_kit.Output:
    return graphs.train_and_predict(ctx, make_encoder(ctx), with_geometry=True, with_pairs=True)


if __name__ == "__main__":
    boom_kit.run(fit_predict)

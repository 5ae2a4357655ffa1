"""BOOM's topological GNN (TGNN): message passing on the SMILES bond graph with explicit hydrogens.

Atoms: element one-hot + nuclear charge; edges: bond type.  ``layers`` residual message-passing layers
(BOOM's GCL: edge MLP over [h_i, h_j, e_ij], sum aggregation, node MLP), then a per-atom head pooled by
the task's readout (sum / mean; mu has no coordinates here, so BOOM's sum).  Training and prediction
follow the shared graph recipe in ``boom_kit.graphs.train_and_predict`` (AdamW, per-epoch exponential
decay, validation from train, best-validation weights).
"""
from torch import nn

import boom_kit
from boom_kit import graphs


class TopologicalEncoder(nn.Module):
    def __init__(self, hidden: int, layers: int) -> None:
        super().__init__()
        self.embed = graphs.AtomEmbedding(hidden)
        self.bond_embed = nn.Linear(graphs.N_BOND_FEATURES, hidden)
        self.layers = nn.ModuleList(graphs.BondMessageLayer(hidden) for _ in range(layers))

    def forward(self, b: graphs.GraphBatch):
        h, e = self.embed(b), self.bond_embed(b.edge_attr)
        for layer in self.layers:
            h = layer(h, b.edge_index, e)
        return h


def fit_predict(ctx: boom_kit.Context) -> boom_kit.Output:
    layers = ctx.param("layers")
    return graphs.train_and_predict(ctx, lambda hidden: TopologicalEncoder(hidden, layers),
                                    with_geometry=False)


if __name__ == "__main__":
    boom_kit.run(fit_predict)

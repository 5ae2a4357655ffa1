"""egnn: smoke runs, E(3) invariance of predictions, and a learned (trainable) coordinate update."""

import numpy as np
import pandas as pd
import pytest
import torch

from boom_kit import graphs
from boom_kit.geometry import Geometry

from tests.conftest import model_module, smoke_run

SMILES = ["CC(=O)Nc1ccc(O)cc1", "OCC1OC(O)C(O)C1O", "C#CCN(C)C"]


def _main():
    return model_module("egnn")


def _geometries():
    from boom.data.geometry import embed

    out = []
    for smi in SMILES:
        symbols, coords = embed(smi)
        out.append((smi, Geometry(tuple(symbols), np.array(coords))))
    return out


def _random_rotation(rng):
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:  # a proper rotation (reflections are covered too, but keep it honest)
        q[:, 0] *= -1
    return q


def _model(readout, hidden=16, layers=3):
    torch.manual_seed(0)
    main = _main()
    return graphs.GraphRegressor(main.EGNNEncoder(hidden, layers, 16, 10.0, 10.0), hidden, readout).double()


def _batch(mols):
    gs = graphs.GraphSet([graphs.graph_from_geometry(s, g) for s, g in mols], with_pos=True, with_pairs=True)
    b = gs.batch(range(len(gs)))
    b.x, b.pos, b.edge_attr = b.x.double(), b.pos.double(), b.edge_attr.double()
    return b


@pytest.mark.parametrize("readout", ["sum", "mean", "dipole"])
def test_predictions_invariant_to_rotation_and_translation(readout):
    rng = np.random.default_rng(1)
    mols = _geometries()
    moved = []
    for smi, g in mols:
        rot, shift = _random_rotation(rng), rng.normal(scale=5.0, size=3)
        moved.append((smi, Geometry(g.symbols, g.positions @ rot.T + shift)))
    model = _model(readout).eval()
    with torch.no_grad():
        before, after = model(_batch(mols)), model(_batch(moved))
    assert before.abs().min() > 0
    torch.testing.assert_close(after, before, rtol=1e-6, atol=1e-8)
    # and the model is not trivially invariant: moving one atom changes the prediction
    smi, g = mols[0]
    pos = g.positions.copy()
    pos[0] += 0.3
    with torch.no_grad():
        bent = model(_batch([(smi, Geometry(g.symbols, pos))] + mols[1:]))
    assert (bent[0] - before[0]).abs() > 1e-10, (bent[0] - before[0]).item()


def test_coordinate_update_is_learned_and_equivariant():
    model = _model("mean", layers=3)
    layers = model.encoder.layers
    assert all(layer.coord_mlp is not None for layer in layers[:-1]) and layers[-1].coord_mlp is None
    b = _batch(_geometries())
    loss = (model(b) - 1.0).pow(2).mean()
    loss.backward()
    for layer in layers[:-1]:
        params = list(layer.coord_mlp.parameters())
        assert params and all(p.requires_grad for p in params)
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in params)
    # the update moves atoms, and rotates with the input
    layer = layers[0]
    h = model.encoder.embed(b)
    attr = torch.nn.functional.one_hot(b.pair_type, graphs.NO_BOND + 1).double()
    with torch.no_grad():
        _, x1 = layer(h, b.pos, b.pair_index, attr)
        rot = torch.as_tensor(_random_rotation(np.random.default_rng(2)))
        _, x2 = layer(h, b.pos @ rot.T, b.pair_index, attr)
    assert (x1 - b.pos).abs().max() > 0
    torch.testing.assert_close(x2, x1 @ rot.T, rtol=1e-6, atol=1e-8)



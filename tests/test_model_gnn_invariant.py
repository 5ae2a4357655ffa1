"""gnn-invariant: smoke runs, and predictions that depend on distances only."""

import numpy as np
import pandas as pd
import pytest
import torch

from boom_kit import graphs
from boom_kit.geometry import Geometry

from tests.conftest import model_module, smoke_run


def _encoder(hidden=16, layers=2):
    return model_module("gnn-invariant").InvariantEncoder(hidden, layers, 16, 10.0)


def _predict(model, mols):
    gs = graphs.GraphSet([graphs.graph_from_geometry(s, g) for s, g in mols], with_pos=True, with_pairs=True)
    b = gs.batch(range(len(gs)))
    b.x, b.pos, b.edge_attr = b.x.double(), b.pos.double(), b.edge_attr.double()
    with torch.no_grad():
        return model(b)


@pytest.mark.parametrize("readout", ["sum", "dipole"])
def test_invariant_to_rotation_translation_and_reflection(readout):
    from boom.data.geometry import embed

    rng = np.random.default_rng(3)
    mols = []
    for smi in ("CC(=O)Nc1ccc(O)cc1", "OCC1OC(O)C(O)C1O"):
        symbols, coords = embed(smi)
        mols.append((smi, Geometry(tuple(symbols), np.array(coords))))
    torch.manual_seed(0)
    model = graphs.GraphRegressor(_encoder(), 16, readout).double().eval()
    before = _predict(model, mols)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))  # orthogonal: rotation or reflection
    moved = [(s, Geometry(g.symbols, g.positions @ q.T + rng.normal(scale=4.0, size=3))) for s, g in mols]
    torch.testing.assert_close(_predict(model, moved), before, rtol=1e-6, atol=1e-8)
    smi, g = mols[1]
    squeezed = [mols[0], (smi, Geometry(g.symbols, g.positions * 1.05))]  # distances change: prediction changes
    assert (_predict(model, squeezed)[1] - before[1]).abs() > 1e-10



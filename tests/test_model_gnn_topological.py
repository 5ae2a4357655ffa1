"""gnn-topological: CPU smoke runs through the local runner, and the readout the property table asks for."""
import numpy as np
import pandas as pd
import pytest

from tests.conftest import model_module, smoke_run


def test_sum_readout_is_size_extensive():
    """A sum readout doubles for two copies of a molecule in one disjoint graph; a mean readout does not."""
    import torch
    from boom_kit import graphs

    torch.manual_seed(0)
    g = graphs.graph_from_smiles("CCO")
    gs = graphs.GraphSet([g, g])
    b = gs.batch([0, 1])
    main = model_module("gnn-topological")
    for mode in ("sum", "mean"):
        model = graphs.GraphRegressor(main.TopologicalEncoder(16, 2), 16, mode).eval()
        with torch.no_grad():
            one = model(gs.batch([0]))
            two = model(b)
        assert torch.allclose(two, one.repeat(2), atol=1e-5)  # molecules in a batch do not interact
        merged = graphs.GraphSet([graphs.MolGraph(
            z=np.concatenate([g.z, g.z]),
            edge_index=np.concatenate([g.edge_index, g.edge_index + g.n_atoms], axis=1),
            bond_type=np.concatenate([g.bond_type, g.bond_type]))]).batch([0])
        with torch.no_grad():
            dimer = model(merged)
        factor = 2.0 if mode == "sum" else 1.0
        assert torch.allclose(dimer, factor * one, atol=1e-5)

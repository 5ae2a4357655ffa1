"""graphormer3d: smoke runs on density and mu, invariance, padding, readout from the table, EMA weights."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import REPO, model_module, smoke_run

torch = pytest.importorskip("torch")


def _modules():
    return model_module("graphormer3d", "g3dnet"), model_module("graphormer3d")


def _clouds(transform=None):
    from boom_kit.geometry import Geometry
    from boom_kit.pointcloud import PointClouds

    rng = np.random.default_rng(5)
    geoms = {"a": Geometry(("C", "H", "H", "O", "H"), rng.normal(scale=1.2, size=(5, 3))),
             "b": Geometry(("F", "C", "N"), rng.normal(scale=1.2, size=(3, 3)))}
    if transform is not None:
        geoms = {k: Geometry(g.symbols, transform(g.positions)) for k, g in geoms.items()}
    return PointClouds(["a", "nogeom", "b"], geoms)


def _run(model, pc, idx):
    atoms, pos, mask = pc.padded(np.asarray(idx))
    return model(atoms, pos.double(), mask)


@pytest.mark.parametrize("readout", ["sum", "mean", "dipole", "extent"])
def test_invariant_to_rotation_translation_and_padding(readout):
    g3dnet, _ = _modules()
    from boom_kit.pointcloud import random_rotation

    rot = random_rotation(11)
    torch.manual_seed(0)
    model = g3dnet.Graphormer3D(embed=16, ffn=16, heads=2, layers=2, num_kernel=8, readout=readout).double().eval()
    pc = _clouds()
    moved = _clouds(lambda p: p @ rot.T + np.array([1.0, -2.0, 3.0]))
    bent = _clouds(lambda p: p + np.array([[0.4, 0, 0]] + [[0, 0, 0]] * (len(p) - 1)))
    with torch.no_grad():
        a, b, c = _run(model, pc, [0, 2]), _run(model, moved, [0, 2]), _run(model, bent, [0, 2])
        alone = _run(model, pc, [2])  # molecule b padded to 5 atoms in the batch, unpadded alone
    assert torch.allclose(a, b, atol=1e-5), (a, b)  # positions are stored as float32
    assert torch.allclose(a[1], alone[0], atol=1e-9)
    assert not torch.allclose(a, c, atol=1e-4)
    if readout in ("dipole", "extent"):
        assert (a >= 0).all()


def test_missing_geometry_is_flagged_and_rejected_in_batches():
    pc = _clouds()
    assert pc.has_geometry.tolist() == [True, False, True]
    with pytest.raises(ValueError, match="without a geometry"):
        pc.padded(np.array([0, 1]))
    from boom_kit.pointcloud_recipe import with_fallback

    assert with_fallback(np.array([1.0, 2.0]), pc.has_geometry, 9.0).tolist() == [1.0, 9.0, 2.0]


def test_smoke_density_predicts_with_ema_weights(prepared, monkeypatch):
    out = smoke_run("graphormer3d", "density")
    report = json.loads((out.folder / "model_report.json").read_text())
    assert report["extra"]["readout"] == "mean" and report["n_parameters"] > 0 and report["best_epoch"] == 1

    # the same task in-process: after training the model holds the EMA weights it then predicts with
    from boom_kit.entry import load_context

    from boom_kit import torch_loop  # the shared point-cloud recipe trains through it

    _, main = _modules()
    seen = {}
    real_fit = torch_loop.fit

    def spy(model, *args, **kwargs):
        result = real_fit(model, *args, **kwargs)
        seen["ema"], seen["model"] = kwargs.get("ema"), model
        return result

    monkeypatch.setattr(torch_loop, "fit", spy)
    y = main.fit_predict(load_context(out.folder / "task.json", REPO / "models" / "graphormer3d" / "main.py")).y_pred
    assert np.isfinite(y).all()
    ema, model = seen["ema"], seen["model"]
    assert ema is not None
    params = list(model.parameters())
    assert len(params) == len(ema.shadow_params)
    assert all(torch.equal(p.detach(), s) for p, s in zip(params, ema.shadow_params))


def test_smoke_mu_two_epochs_with_ema(prepared):
    out = smoke_run("graphormer3d", "mu", sets={"epochs": "2"})
    report = json.loads((out.folder / "model_report.json").read_text())
    assert report["extra"]["readout"] == "dipole"
    history = report["extra"]["history"]
    assert len(history) == 2 and report["best_epoch"] == 1 + min((0, 1), key=lambda i: history[i]["val_rmse"])

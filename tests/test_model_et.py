"""et: smoke runs on density and mu, readouts from the kit table, invariance, neighbour cap, checkpoint loading."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import model_module, smoke_run

torch = pytest.importorskip("torch")


def _et_modules():
    return model_module("et", "etnet"), model_module("et")


def _molecules():
    from boom_kit.pointcloud import random_rotation

    rng = np.random.default_rng(3)
    z = torch.tensor([1, 1, 0, 1, 2, 3, 0, 0, 1, 4, 0])
    pos = torch.tensor(rng.normal(scale=1.3, size=(11, 3)))
    batch = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2])
    rot = torch.tensor(random_rotation(7))
    return z, pos, batch, rot


@pytest.mark.parametrize("readout", ["sum", "mean", "dipole", "extent"])
def test_invariant_to_rotation_and_translation(readout):
    etnet, _ = _et_modules()
    torch.manual_seed(0)
    model = etnet.EquivariantTransformer(hidden=16, layers=2, heads=2, num_rbf=8, readout=readout).double().eval()
    z, pos, batch, rot = _molecules()
    with torch.no_grad():
        a = model(z, pos, batch, 3)
        b = model(z, pos @ rot.T + torch.tensor([2.0, -3.0, 0.5], dtype=torch.float64), batch, 3)
        moved = pos.clone()
        moved[:2] += 0.3  # a real change of geometry must change the prediction (the test can fail)
        c = model(z, moved, batch, 3)
    assert torch.allclose(a, b, atol=1e-9), (a, b)
    assert not torch.allclose(a[0], c[0], atol=1e-6)
    if readout in ("dipole", "extent"):
        assert (a >= 0).all()


def test_dipole_vector_is_equivariant_and_norm_invariant():
    """The dipole head's vector rotates with the molecule, so its norm (the prediction) does not change."""
    etnet, _ = _et_modules()
    from boom_kit.pointcloud import centre_of_mass, scatter_sum

    torch.manual_seed(1)
    model = etnet.EquivariantTransformer(hidden=16, layers=2, heads=2, num_rbf=8, readout="dipole").double().eval()
    z, pos, batch, rot = _molecules()

    def dipole_vector(p):
        captured = {}
        hook = model.output_network[1].register_forward_hook(lambda m, i, o: captured.update(out=o))
        norm = model(z, p, batch, 3)
        hook.remove()
        x, vec = captured["out"]
        c = centre_of_mass(z, p, batch, 3)[batch]
        counts = torch.bincount(batch, minlength=3).to(x.dtype)
        q = x.squeeze(-1) - (scatter_sum(x.squeeze(-1), batch, 3) / counts)[batch]  # neutral charges
        return scatter_sum(q.unsqueeze(-1) * (p - c) + vec.squeeze(-1), batch, 3), norm

    with torch.no_grad():
        v1, n1 = dipole_vector(pos)
        v2, n2 = dipole_vector(pos @ rot.T)
    assert torch.allclose(v1 @ rot.T, v2, atol=1e-9)
    assert torch.allclose(n1, n2, atol=1e-9) and torch.allclose(n1, v1.norm(dim=-1))


def test_neighbour_cap_keeps_the_nearest_and_changes_dense_molecules_only():
    etnet, _ = _et_modules()
    rng = np.random.default_rng(5)
    pos = torch.tensor(rng.normal(scale=0.8, size=(12, 3)))  # 12 atoms well within the 5 A cutoff
    batch = torch.zeros(12, dtype=torch.long)
    z = torch.zeros(12, dtype=torch.long)
    torch.manual_seed(0)
    capped = etnet.EquivariantTransformer(hidden=16, layers=1, heads=2, num_rbf=8, max_neighbors=4).double().eval()
    free = etnet.EquivariantTransformer(hidden=16, layers=1, heads=2, num_rbf=8, max_neighbors=32).double().eval()
    free.load_state_dict(capped.state_dict())
    src, dst = capped.edges(pos, batch)
    real = src != dst
    assert (src == dst).sum() == 12  # every self loop kept
    assert torch.equal(torch.bincount(dst[real], minlength=12), torch.full((12,), 4))
    d = torch.cdist(pos, pos)
    for i in range(12):
        kept = set(src[real & (dst == i)].tolist())
        nearest = set(torch.argsort(d[i].masked_fill(torch.arange(12) == i, float("inf")), stable=True)[:4].tolist())
        assert kept == nearest
    with torch.no_grad():
        assert not torch.allclose(capped(z, pos, batch, 1), free(z, pos, batch, 1))
    sparse = torch.tensor([[0.0, 0, 0], [1.1, 0, 0], [0, 1.1, 0]], dtype=torch.float64)
    b3 = torch.zeros(3, dtype=torch.long)
    with torch.no_grad():  # fewer neighbours than the cap: identical to no cap
        assert torch.allclose(capped(z[:3], sparse, b3, 1), free(z[:3], sparse, b3, 1))
    with pytest.raises(ValueError, match="max_neighbors"):
        etnet.EquivariantTransformer(hidden=16, layers=1, heads=2, num_rbf=8, max_neighbors=0)


def test_smoke_density_saves_and_reloads_checkpoint(prepared):
    from boom.options import RunOptions
    from boom.orchestrate import run
    from boom.runners.local import LocalRunner

    first = smoke_run("et", "density", sets={"save_checkpoint": "true"})
    ckpt = first.folder / "et.pt"
    assert ckpt.is_file()
    saved = torch.load(ckpt, weights_only=True)["state_dict"]

    # another seed (another initialisation), lr 0: the weights that come out are exactly the loaded ones
    second = smoke_run("et", "density", seed=1, sets={"checkpoint": str(ckpt), "lr": "0", "save_checkpoint": "true"})
    again = torch.load(second.folder / "et.pt", weights_only=True)["state_dict"]
    assert saved.keys() == again.keys()
    for key in saved:
        assert torch.equal(saved[key], again[key]), key
    report = json.loads((second.folder / "model_report.json").read_text())
    assert any("initialised from checkpoint" in n for n in report["notes"])
    assert report["pretrained"] == str(ckpt)
    assert json.loads((first.folder / "model_report.json").read_text())["pretrained"] is None

    # in-process strict load too, and a mismatched architecture is a clear error
    etnet, main = _et_modules()
    model = etnet.EquivariantTransformer(hidden=16, layers=1, heads=2, num_rbf=8, readout="mean")
    main.load_checkpoint(model, str(ckpt))
    for key, value in model.state_dict().items():
        assert torch.equal(value, saved[key]), key
    with pytest.raises(ValueError, match="does not match the architecture"):
        main.load_checkpoint(etnet.EquivariantTransformer(hidden=32, layers=1, heads=2, num_rbf=8), str(ckpt))

    bad = run("et", "density", LocalRunner(), RunOptions(seeds=(2,), overrides={"checkpoint": str(ckpt), "hidden_channels": "32"},
              subset=60, smoke=True, threads=1, force=True))
    assert bad.record.status.value != "ok"
    assert "does not match the architecture" in (bad.record.reason or "")
    missing = run("et", "density", LocalRunner(), RunOptions(seeds=(3,), overrides={"checkpoint": str(ckpt) + ".nope"},
                  subset=60, smoke=True, threads=1, force=True))
    assert missing.record.status.value != "ok"
    assert "not found" in (missing.record.reason or "")


def test_smoke_mu_dipole_head(prepared):
    out = smoke_run("et", "mu")
    report = json.loads((out.folder / "model_report.json").read_text())
    assert report["extra"]["readout"] == "dipole"
    assert report["n_parameters"] > 0 and report["best_epoch"] == 1

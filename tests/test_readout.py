"""The kit's readout table (boom_kit.readout): the physics of each readout, its target scaling, each 3D model's
spec stating it, and, for every 3D model's readout path, that an extensive prediction doubles for two far-apart
copies of a molecule while an intensive one stays the same."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from tests.conftest import model_module

torch = pytest.importorskip("torch")

GEOMETRY_MODELS = ("et", "graphormer3d", "egnn", "gnn-invariant", "mace")
FAR = np.array([80.0, -60.0, 40.0])  # far beyond every cutoff


class Ctx:
    def __init__(self, prop, **params):
        from boom_schema import PROPERTIES

        self.task = SimpleNamespace(property=prop, readout=PROPERTIES[prop].readout)
        self.params, self.notes = {"readout": "auto", **params}, []  # the specs' declared default

    def param(self, name, default=None):
        return self.params.get(name, default)

    def note(self, text):
        self.notes.append(text)


# ----------------------------------------------------------------------------------------- the table


def test_physical_readouts_follow_the_property_table():
    from boom_kit import readout

    assert readout.readout_table(["density", "hof", "mu", "alpha", "r2", "gap"]) == {
        "density": "mean", "hof": "sum", "mu": "dipole", "alpha": "sum", "r2": "extent", "gap": "mean"}
    without = readout.readout_table(["mu", "r2", "homo"], positions=False)
    assert without == {"mu": "sum", "r2": "sum", "homo": "mean"}


def test_choose_auto_override_and_errors():
    from boom_kit import readout

    assert readout.choose(Ctx("hof")) == "sum"
    ctx = Ctx("hof", readout="mean")
    assert readout.choose(ctx) == "mean" and "overrides the physical readout (sum)" in ctx.notes[0]
    assert not Ctx("hof", readout="sum").notes and readout.choose(Ctx("hof", readout="sum")) == "sum"
    with pytest.raises(ValueError, match="choose auto or one of"):
        readout.choose(Ctx("hof", readout="max"))
    with pytest.raises(ValueError, match="needs atomic positions"):
        readout.choose(Ctx("mu", readout="dipole"), positions=False)


def test_choose_notes_the_fallback_without_coordinates_but_not_an_override():
    from boom_kit import readout

    ctx = Ctx("mu")
    assert readout.choose(ctx, positions=False) == "sum"
    assert ctx.notes == ["mu without coordinates: sum readout of per-atom outputs"]
    plain = Ctx("hof")
    assert readout.choose(plain, positions=False) == "sum" and not plain.notes
    override = Ctx("r2", readout="mean")  # the override's own note, not a false 'sum readout' one
    assert readout.choose(override, positions=False) == "mean"
    assert len(override.notes) == 1 and "overrides the physical readout (sum)" in override.notes[0]


@pytest.mark.parametrize("model", GEOMETRY_MODELS + ("gnn-topological",))
def test_every_model_spec_states_its_readout_per_property_and_declares_the_override(model):
    from boom import paths
    from boom_kit import readout
    from boom_schema import InputKind, load_spec

    spec = load_spec(paths.repo_root() / "models" / model / "model.yaml")
    positions = spec.input == InputKind.GEOMETRY3D
    assert readout.describe(spec.tasks, positions) in " ".join(spec.description.split())
    assert spec.defaults.get("readout") == "auto"


# ----------------------------------------------------------------------------------------- scaling


def test_element_offsets_are_least_squares_on_counts_and_zero_for_absent_elements():
    from boom_kit import readout

    rng = np.random.default_rng(0)
    counts = np.column_stack([rng.integers(2, 20, 300), rng.integers(1, 9, 300), rng.integers(0, 4, 300),
                              rng.integers(0, 5, 300), np.zeros(300)]).astype(float)
    truth = np.array([-0.6, -38.0, -54.5, -75.1, 0.0])
    y = counts @ truth + rng.normal(scale=0.01, size=300)
    offsets = readout.element_offsets(counts, y)
    np.testing.assert_allclose(offsets, truth, atol=0.01)
    assert offsets[4] == 0.0


@pytest.mark.parametrize("mode", ["sum", "mean", "dipole", "extent"])
def test_scaler_round_trip_and_size_behaviour(mode):
    from boom_kit import readout

    rng = np.random.default_rng(1)
    counts = rng.integers(1, 12, size=(200, 5)).astype(float)
    y = counts @ np.array([1.0, 2.0, 3.0, 4.0, 5.0]) + rng.normal(size=200) if mode == "sum" \
        else np.abs(rng.normal(2.0, 1.0, size=200))
    scaler = readout.ReadoutScaler(mode).fit(y, counts)
    z = scaler.transform(y, counts)
    np.testing.assert_allclose(scaler.inverse(z, counts), y)
    doubled = scaler.inverse(2 * z[:5], 2 * counts[:5])
    if mode == "sum":  # offsets and pooled term both double: extensive
        np.testing.assert_allclose(doubled, 2 * y[:5])
        assert np.sqrt(np.mean(z**2)) == pytest.approx(1.0)
    if mode == "mean":
        assert abs(z.mean()) < 1e-9 and z.std() == pytest.approx(1.0)
        np.testing.assert_allclose(scaler.inverse(z[:5], 2 * counts[:5]), y[:5])  # counts play no part
    if mode in ("dipole", "extent"):
        assert scaler.shift == 0.0 and np.sqrt(np.mean(z**2)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="non-finite"):
        readout.ReadoutScaler(mode).fit(np.array([1.0, np.nan]), counts[:2])


def test_dipole_and_extent_pools_are_physical():
    from boom_kit import readout
    from boom_kit.pointcloud import MASS_TABLE

    pos = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]], dtype=torch.float64)
    element = torch.tensor([1, 1])  # two carbons
    b = torch.zeros(2, dtype=torch.long)
    dip = readout.Pool("dipole")
    assert dip(torch.tensor([0.5, -0.5], dtype=torch.float64), b, 1, element, pos).item() == pytest.approx(0.5)
    # charges are neutralised, so neither a common charge nor the origin changes mu
    assert dip(torch.tensor([3.5, 2.5], dtype=torch.float64), b, 1, element, pos + 7.0).item() == pytest.approx(0.5)
    o = torch.tensor([0.3, -1.2], dtype=torch.float64)
    ext = readout.Pool("extent", extent_scale=2.0)
    expected = 2.0 * (np.log1p(np.exp(0.3)) * 0.25 + np.log1p(np.exp(-1.2)) * 0.25)  # centre of mass at x = 0.5
    assert ext(o, b, 1, element, pos).item() == pytest.approx(expected)
    assert ext(o, b, 1, element, pos + 3.0).item() == pytest.approx(expected)
    hydrogen_carbon = torch.tensor([0, 1])  # unequal masses: the centre moves to the carbon
    c = MASS_TABLE[1] / (MASS_TABLE[0] + MASS_TABLE[1])
    expected = np.log1p(np.exp(0.3)) * c**2 + np.log1p(np.exp(-1.2)) * (1 - c) ** 2
    assert readout.Pool("extent")(o, b, 1, hydrogen_carbon, pos).item() == pytest.approx(expected)
    with pytest.raises(ValueError, match="needs positions"):
        dip(o, b, 1)


def test_pool_scales_from_train_molecules():
    from boom_kit import readout

    elements = [np.array([1, 0]), np.array([1, 1, 0, 0])]
    positions = [np.array([[0.0, 0, 0], [1.0, 0, 0]]), np.array([[0.0, 0, 0], [2.0, 0, 0], [0, 1.0, 0], [1, 1.0, 0]])]
    atom_scale, extent_scale = readout.pool_scales("sum", np.array([2, 4]), elements, positions)
    assert atom_scale == pytest.approx(1 / 3) and extent_scale == 1.0
    atom_scale, extent_scale = readout.pool_scales("extent", np.array([2, 4]), elements, positions)
    assert atom_scale == 1.0 and extent_scale == pytest.approx(1 / readout.mean_extent(elements, positions))


# ----------------------------------------------------------------------------------------- two copies


def _molecule():
    """A small geometry (element indices into ELEMENTS, positions in Angstrom): N-methylformamide-like."""
    element = np.array([1, 2, 1, 3, 0, 0, 0, 0, 0])
    rng = np.random.default_rng(4)
    pos = np.array([[0.0, 0, 0], [1.4, 0, 0], [2.1, 1.2, 0], [3.3, 1.3, 0], [-0.5, 0.9, 0.3], [-0.4, -0.9, 0.3],
                    [-0.3, 0.0, -1.0], [1.9, -0.9, 0.1], [1.5, 2.1, 0.2]]) + rng.normal(scale=0.05, size=(9, 3))
    return element, pos


def _counts(element):
    from boom_kit.readout import element_counts

    return element_counts([element])


def _scaler(mode):
    """A fitted scaler with non-zero per-element offsets (sum) or a non-zero shift (mean)."""
    from boom_kit.readout import ReadoutScaler

    rng = np.random.default_rng(2)
    counts = rng.integers(1, 10, size=(50, 5)).astype(float)
    y = counts @ np.array([-0.5, -38.0, -54.0, -75.0, -99.0]) + rng.normal(size=50) if mode == "sum" \
        else rng.normal(1.7, 0.3, size=50)
    return ReadoutScaler(mode).fit(y, counts)


def _check_two_copies(mode, single_z, pair_z, element):
    """Predictions in property units: sum doubles (offsets included), mean does not change."""
    scaler = _scaler(mode)
    single = scaler.inverse(np.atleast_1d(single_z), _counts(element))[0]
    pair = scaler.inverse(np.atleast_1d(pair_z), _counts(np.concatenate([element, element])))[0]
    if mode == "sum":
        assert pair == pytest.approx(2 * single, rel=1e-6)
    else:
        assert pair == pytest.approx(single, rel=1e-6)
        assert pair != pytest.approx(2 * single, rel=1e-3)


def _pair(element, pos):
    return np.concatenate([element, element]), np.concatenate([pos, pos + FAR])


@pytest.mark.parametrize("mode", ["sum", "mean"])
def test_et_whole_model_two_copies(mode):
    """ET's cutoff makes the whole model local: the two-copy molecule is two molecules to it."""
    etnet = model_module("et", "etnet")
    torch.manual_seed(0)
    model = etnet.EquivariantTransformer(hidden=16, layers=2, heads=2, num_rbf=8, readout=mode,
                                         atom_scale=0.2).double().eval()
    element, pos = _molecule()
    pe, pp = _pair(element, pos)
    with torch.no_grad():
        single = model(torch.tensor(element), torch.tensor(pos), torch.zeros(9, dtype=torch.long), 1).item()
        pair = model(torch.tensor(pe), torch.tensor(pp), torch.zeros(18, dtype=torch.long), 1).item()
    _check_two_copies(mode, single, pair, element)


@pytest.mark.parametrize("mode", ["sum", "mean"])
def test_mace_whole_model_two_copies(mode):
    """MACE (cutoff r_max) predicts in property units, offsets inside the module."""
    main = model_module("mace")
    from boom_kit.geometry import ELEMENTS, Geometry

    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        torch.manual_seed(0)
        hp = {"interaction": "RealAgnosticResidualInteractionBlock", "num_interactions": 2, "channels": 8, "max_L": 1,
              "max_ell": 1, "correlation": 2, "num_bessel": 4, "num_cutoff_basis": 5, "mlp_hidden": 8,
              "radial_hidden": 8, "r_max": 5.0}
        model = main.MaceProperty(mode, hp, 8.0, _scaler(mode), atom_scale=0.2).eval()
        element, pos = _molecule()
        geoms = [Geometry(tuple(ELEMENTS[e] for e in el), p) for el, p in [(element, pos), _pair(element, pos)]]
        graphs = main.Graphs(geoms, 5.0)
        with torch.no_grad():
            single, pair = model(graphs.batch([0, 1], "cpu", torch.float64)).tolist()
    finally:
        torch.set_default_dtype(before)
    if mode == "sum":
        assert pair == pytest.approx(2 * single, rel=1e-6)
    else:
        assert pair == pytest.approx(single, rel=1e-6)


@pytest.mark.parametrize("mode", ["sum", "mean"])
def test_graphormer3d_readout_path_two_copies(mode):
    """Graphormer-3D attends over every atom (no cutoff), so the test feeds its own readout the atomic outputs of
    each copy: the readout path, not the encoder, is what must be extensive."""
    g3dnet = model_module("graphormer3d", "g3dnet")
    torch.manual_seed(0)
    model = g3dnet.Graphormer3D(embed=16, ffn=16, heads=2, layers=1, num_kernel=8, readout=mode,
                                atom_scale=0.2).double().eval()
    element, pos = _molecule()
    atoms = torch.tensor(element + 1).unsqueeze(0)
    p = torch.tensor(pos).unsqueeze(0)
    mask = torch.ones_like(atoms, dtype=torch.bool)
    pe, pp = _pair(element, pos)
    with torch.no_grad():
        atomic = model.atomic(atoms, p, mask)
        single = model.readout(atomic, atoms, p, mask).item()
        assert single == pytest.approx(model(atoms, p, mask).item())  # the path forward() takes
        pair = model.readout(torch.cat([atomic, atomic], 1), torch.tensor(pe + 1).unsqueeze(0),
                             torch.tensor(pp).unsqueeze(0), torch.ones(1, 18, dtype=torch.bool)).item()
    _check_two_copies(mode, single, pair, element)


def _graph_batch(element, pos):
    from boom_kit import graphs
    from boom_kit.geometry import ATOMIC_NUMBERS, ELEMENTS

    z = np.array([ATOMIC_NUMBERS[ELEMENTS[e]] for e in element])
    edges = np.array([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]])
    g = graphs.MolGraph(z=z, edge_index=edges, bond_type=np.zeros(6, dtype=np.int64), pos=pos)
    return graphs.GraphSet([g], with_pos=True, with_pairs=True).batch([0])


@pytest.mark.parametrize("model_name", ["egnn", "gnn-invariant"])
@pytest.mark.parametrize("mode", ["sum", "mean"])
def test_graph_models_readout_path_two_copies(model_name, mode):
    """EGNN and the invariant GNN connect every atom pair, so (as for Graphormer-3D) the test duplicates the
    atomic outputs into the shared GraphRegressor readout and the kit's scaler."""
    from boom_kit import graphs

    main = model_module(model_name)
    torch.manual_seed(0)
    encoder = main.EGNNEncoder(16, 2, 16, 10.0, 10.0) if model_name == "egnn" else main.InvariantEncoder(16, 2, 16, 10.0)
    model = graphs.GraphRegressor(encoder, 16, mode, atom_scale=0.2).double().eval()
    element, pos = _molecule()
    b = _graph_batch(element, pos)
    b.x, b.pos, b.edge_attr = b.x.double(), b.pos.double(), b.edge_attr.double()
    with torch.no_grad():
        atomic = model.atomic(b)
        single = model.pool(atomic, b.batch, 1, element=b.element, pos=b.pos).item()
        assert single == pytest.approx(model(b).item())
        pe, pp = _pair(element, pos)
        pair = model.pool(torch.cat([atomic, atomic]), torch.zeros(18, dtype=torch.long), 1,
                          element=torch.tensor(pe), pos=torch.tensor(pp)).item()
    _check_two_copies(mode, single, pair, element)

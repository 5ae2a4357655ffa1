"""Molecular graphs for GNNs: bond graphs whose atoms are the geometry's atoms, batching, readouts.

One graph per molecule: atoms with explicit hydrogens, atom features = one-hot over
:data:`boom_kit.geometry.ELEMENTS` plus the nuclear charge, directed bond edges (both directions) typed
single / double / triple / aromatic, and, for geometry models, the 3D positions of *the same atoms in the
same order*.  That last point is where BOOM's GNN code went wrong on QM9: QM9's coordinates are in QM9's
xyz order, not in the order of the SMILES, so :func:`graph_from_geometry` maps the SMILES atoms onto the
geometry (identity when the orders already agree, as for 10k_csd's AddHs-ordered conformers; otherwise
a graph isomorphism between the SMILES graph and the connectivity perceived from the coordinates) and
only falls back to bonds perceived from the geometry alone when the two disagree.

Batches are disjoint unions in plain torch (``index_add_``; no torch-scatter): concatenated nodes,
offset edge indices and a ``batch`` vector.  :func:`train_and_predict` holds the training recipe shared by
the graph models (the kit's readout table and its target scaling, ``boom_kit.readout``; validation from
train only; best-validation weights; fallback prediction for molecules without a geometry).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from torch import nn

from boom_kit.geometry import ATOMIC_NUMBERS, ELEMENTS, Geometry

BOND_TYPES = ("SINGLE", "DOUBLE", "TRIPLE", "AROMATIC")
NO_BOND = len(BOND_TYPES)  # pair type of two atoms that are not bonded (fully connected graphs)
N_ATOM_FEATURES = len(ELEMENTS) + 1
N_BOND_FEATURES = len(BOND_TYPES)
# How a graph's atoms were tied to its coordinates (see graph_from_geometry).
SOURCES = ("smiles", "smiles-identity", "smiles-matched", "geometry-bonds", "geometry-connectivity")


@dataclass(frozen=True)
class MolGraph:
    """One molecule: atomic numbers, directed bond edges with their types, optional positions (Angstrom)."""

    z: np.ndarray  # (n,) int64 atomic numbers
    edge_index: np.ndarray  # (2, E) int64, every bond in both directions
    bond_type: np.ndarray  # (E,) int64 index into BOND_TYPES
    pos: Optional[np.ndarray] = None  # (n, 3) float64, same atoms in the same order as z
    source: str = "smiles"

    @property
    def n_atoms(self) -> int:
        return int(self.z.shape[0])

    @property
    def symbols(self) -> tuple[str, ...]:
        inverse = {v: k for k, v in ATOMIC_NUMBERS.items()}
        return tuple(inverse[int(v)] for v in self.z)

    def bond_lengths(self) -> np.ndarray:
        """Length of every bond (each once), from ``pos``."""
        if self.pos is None:
            raise ValueError("graph has no positions")
        i, j = self.edge_index[:, self.edge_index[0] < self.edge_index[1]]
        return np.linalg.norm(self.pos[i] - self.pos[j], axis=1)


def atom_features(z: np.ndarray) -> np.ndarray:
    """One-hot element over ELEMENTS plus nuclear charge / 9 (float32, (n, N_ATOM_FEATURES))."""
    index = {ATOMIC_NUMBERS[e]: k for k, e in enumerate(ELEMENTS)}
    out = np.zeros((z.shape[0], N_ATOM_FEATURES), dtype=np.float32)
    out[np.arange(z.shape[0]), [index[int(v)] for v in z]] = 1.0
    out[:, -1] = z / 9.0
    return out


# ----------------------------------------------------------------------------------------- building


def _mol_with_hs(smiles: str):
    from rdkit import Chem

    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise ValueError(f"RDKit cannot parse SMILES {smiles!r}")
    return Chem.AddHs(mol)


def _bonds(mol) -> tuple[np.ndarray, np.ndarray]:
    """(2, E) directed edges and (E,) bond types of an RDKit molecule."""
    src, dst, kind = [], [], []
    for bond in mol.GetBonds():
        name = str(bond.GetBondType())
        t = BOND_TYPES.index(name) if name in BOND_TYPES else 0  # dative/unspecified: treat as single
        i, j = bond.GetBeginAtomIdx(), bond.GetEndAtomIdx()
        src += [i, j]
        dst += [j, i]
        kind += [t, t]
    return np.array([src, dst], dtype=np.int64).reshape(2, -1), np.array(kind, dtype=np.int64)


def graph_from_smiles(smiles: str) -> MolGraph:
    """Bond graph of a SMILES with explicit hydrogens, in RDKit's AddHs atom order."""
    mol = _mol_with_hs(smiles)
    edge_index, bond_type = _bonds(mol)
    z = np.array([a.GetAtomicNum() for a in mol.GetAtoms()], dtype=np.int64)
    unknown = set(z.tolist()) - set(ATOMIC_NUMBERS.values())
    if unknown:
        raise ValueError(f"SMILES {smiles!r} has atomic numbers {sorted(unknown)} outside {ELEMENTS}")
    return MolGraph(z=z, edge_index=edge_index, bond_type=bond_type, source="smiles")


def _geometry_mol(geometry: Geometry):
    """An RDKit molecule of the geometry's atoms (in its order) with connectivity from the coordinates."""
    from rdkit import Chem
    from rdkit.Chem import rdDetermineBonds
    from rdkit.Geometry import Point3D

    rw = Chem.RWMol()
    for s in geometry.symbols:
        rw.AddAtom(Chem.Atom(ATOMIC_NUMBERS[s]))
    conf = Chem.Conformer(len(geometry.symbols))
    for k, (x, y, z) in enumerate(geometry.positions):
        conf.SetAtomPosition(k, Point3D(float(x), float(y), float(z)))
    rw.AddConformer(conf, assignId=True)
    mol = rw.GetMol()
    rdDetermineBonds.DetermineConnectivity(mol)  # covalent radii * 1.3, RDKit's default
    return mol


def _bond_set(edge_index: np.ndarray) -> set[tuple[int, int]]:
    return {(int(i), int(j)) for i, j in edge_index.T if i < j}


def _stripped(mol):
    """Copy of ``mol`` with only elements and connectivity (all bonds single, no charges/aromaticity)."""
    from rdkit import Chem

    rw = Chem.RWMol(mol)
    for atom in rw.GetAtoms():
        atom.SetIsAromatic(False)
        atom.SetFormalCharge(0)
        atom.SetNoImplicit(True)
        atom.SetNumExplicitHs(0)
        atom.SetChiralTag(Chem.ChiralType.CHI_UNSPECIFIED)
    for bond in rw.GetBonds():
        bond.SetBondType(Chem.BondType.SINGLE)
        bond.SetIsAromatic(False)
    out = rw.GetMol()
    out.UpdatePropertyCache(strict=False)
    return out


# Bounds on the isomorphism search (VF2 is exponential when no mapping exists in a symmetric graph): QM9-sized
# molecules with at most a few contacts beyond the SMILES bonds.  10k_csd conformers are in SMILES order by
# construction, so they never need the search; when their identity check fails the conformer itself is off.
MAX_EXTRA_CONTACTS = 4
MAX_MATCH_ATOMS = 40
_MAX_DEGREE = {1: 1, 6: 4, 7: 4, 8: 3, 9: 1}


def _plausible(gmol) -> bool:
    """No atom has more perceived contacts than its element can bond (e.g. fragments embedded on top of each other)."""
    return all(a.GetDegree() <= _MAX_DEGREE.get(a.GetAtomicNum(), 6) for a in gmol.GetAtoms())


def graph_from_geometry(smiles: str, geometry: Geometry) -> MolGraph:
    """Bond graph whose atom k is the geometry's atom k, with bond types from the SMILES where possible.

    1. identity: the SMILES (AddHs order) has the geometry's elements in the same order and every SMILES
       bond joins atoms the coordinates show as bonded (10k_csd conformers; most QM9 molecules);
    2. matched: an element-preserving bijection of the SMILES atoms onto the geometry's atoms that maps
       every SMILES bond onto a bonded pair of the geometry (QM9 molecules whose xyz order differs from the
       SMILES order); SMILES bond types are carried over.  Contacts perceived in the geometry but absent
       from the SMILES (short 1,3 distances in strained bicyclics) are not bonds.  Searched only when the
       molecule has at most MAX_MATCH_ATOMS atoms and MAX_EXTRA_CONTACTS extra contacts (bounded search);
    3. geometry-bonds: the SMILES does not describe the geometry: bonds and orders perceived from the
       coordinates (``rdDetermineBonds.DetermineBondOrders`` on the perceived connectivity);
    4. geometry-connectivity: bond orders could not be perceived (or the geometry is implausible, e.g. two
       fragments embedded on top of each other): connectivity only, every bond single.
    """
    from rdkit import Chem
    from rdkit.Chem import rdDetermineBonds

    z = np.asarray(geometry.atomic_numbers, dtype=np.int64)
    pos = np.asarray(geometry.positions, dtype=np.float64)
    gmol = _geometry_mol(geometry)
    g_edges, _ = _bonds(gmol)
    g_bonds = _bond_set(g_edges)
    smol = _mol_with_hs(smiles)
    s_edges, s_types = _bonds(smol)
    s_z = np.array([a.GetAtomicNum() for a in smol.GetAtoms()], dtype=np.int64)
    if s_z.shape == z.shape and (s_z == z).all() and _bond_set(s_edges) <= g_bonds:
        return MolGraph(z=z, edge_index=s_edges, bond_type=s_types, pos=pos, source="smiles-identity")
    n_extra = len(g_bonds) - smol.GetNumBonds()
    plausible = _plausible(gmol)
    if (s_z.shape == z.shape and sorted(s_z.tolist()) == sorted(z.tolist()) and 0 <= n_extra <= MAX_EXTRA_CONTACTS
            and len(z) <= MAX_MATCH_ATOMS):
        # VF2 is exponential when no match exists in a symmetric graph: only tried on near-matching geometries
        match = gmol.GetSubstructMatch(_stripped(smol))  # match[k] = geometry atom of SMILES atom k
        if len(match) == len(s_z):
            mapping = np.asarray(match, dtype=np.int64)
            edges = mapping[s_edges]
            if _bond_set(edges) <= g_bonds and (z[mapping] == s_z).all():
                return MolGraph(z=z, edge_index=edges, bond_type=s_types, pos=pos, source="smiles-matched")
    charge = sum(a.GetFormalCharge() for a in smol.GetAtoms())
    try:
        if not plausible:  # overlapping fragments or a broken conformer: bond orders are meaningless
            raise ValueError("over-coordinated atoms")
        perceived = Chem.Mol(gmol)
        rdDetermineBonds.DetermineBondOrders(perceived, charge=charge)
        Chem.SetAromaticity(perceived)
        edges, types = _bonds(perceived)
        return MolGraph(z=z, edge_index=edges, bond_type=types, pos=pos, source="geometry-bonds")
    except Exception:
        return MolGraph(z=z, edge_index=g_edges, bond_type=np.zeros(g_edges.shape[1], dtype=np.int64), pos=pos,
                        source="geometry-connectivity")


def build_graphs(smiles: Sequence[str], mol_ids: Optional[Sequence[str]] = None,
                 geometries: Optional[dict[str, Geometry]] = None) -> tuple[list[Optional[MolGraph]], dict[str, int]]:
    """Graphs for a table of molecules and how many came from each source.

    Without ``geometries``: SMILES graphs (topological models).  With them: :func:`graph_from_geometry`
    per molecule, ``None`` for a molecule without a geometry (the caller predicts it some other way).
    """
    from rdkit import RDLogger

    RDLogger.DisableLog("rdApp.*")
    out: list[Optional[MolGraph]] = []
    counts = {s: 0 for s in SOURCES} | {"missing": 0}
    for k, smi in enumerate(smiles):
        if geometries is None:
            g: Optional[MolGraph] = graph_from_smiles(smi)
        else:
            geom = geometries.get(str(mol_ids[k])) if mol_ids is not None else None
            g = None if geom is None else graph_from_geometry(smi, geom)
        counts[g.source if g is not None else "missing"] += 1
        out.append(g)
    return out, counts


# ----------------------------------------------------------------------------------------- batching


@dataclass
class GraphBatch:
    """A disjoint union of molecules on one device."""

    x: torch.Tensor  # (N, N_ATOM_FEATURES) float
    z: torch.Tensor  # (N,) long
    edge_index: torch.Tensor  # (2, E) long, offset into the batch
    edge_attr: torch.Tensor  # (E, N_BOND_FEATURES) float one-hot bond type
    batch: torch.Tensor  # (N,) long molecule of each atom
    n_atoms: torch.Tensor  # (B,) float
    n_graphs: int
    pos: Optional[torch.Tensor] = None  # (N, 3) float
    pair_index: Optional[torch.Tensor] = None  # (2, P) every ordered pair i != j within a molecule
    pair_type: Optional[torch.Tensor] = None  # (P,) long bond type of the pair, NO_BOND if not bonded
    element: Optional[torch.Tensor] = None  # (N,) long index into ELEMENTS (centres of mass in the readout)


_ELEMENT_OF_Z = np.full(max(ATOMIC_NUMBERS.values()) + 1, -1, dtype=np.int64)
for _k, _e in enumerate(ELEMENTS):
    _ELEMENT_OF_Z[ATOMIC_NUMBERS[_e]] = _k


def element_index(z: np.ndarray) -> np.ndarray:
    """Atomic numbers -> index into ELEMENTS."""
    return _ELEMENT_OF_Z[np.asarray(z, dtype=np.int64)]


@lru_cache(maxsize=512)
def _pairs(n: int) -> np.ndarray:
    i, j = np.nonzero(~np.eye(n, dtype=bool))
    return np.stack([i, j]).astype(np.int64)


class GraphSet:
    """Graphs of a table of molecules (all present), batched on demand: ``batch(idx, device)``."""

    def __init__(self, graphs: Sequence[MolGraph], with_pos: bool = False, with_pairs: bool = False) -> None:
        if any(g is None for g in graphs):
            raise ValueError("GraphSet needs a graph for every molecule (filter missing ones first)")
        if with_pos and any(g.pos is None for g in graphs):
            raise ValueError("with_pos=True but some graphs have no positions")
        self.graphs = list(graphs)
        self.with_pos = with_pos
        self.with_pairs = with_pairs
        self._x = [atom_features(g.z) for g in self.graphs]

    def __len__(self) -> int:
        return len(self.graphs)

    @property
    def n_atoms(self) -> np.ndarray:
        return np.array([g.n_atoms for g in self.graphs], dtype=np.float64)

    def element_counts(self) -> np.ndarray:
        """(n_molecules, len(ELEMENTS)) element counts (the sum readout's per-element offsets)."""
        from boom_kit.readout import element_counts

        return element_counts([element_index(g.z) for g in self.graphs])

    def batch(self, idx: Sequence[int], device: str | torch.device = "cpu") -> GraphBatch:
        gs = [self.graphs[int(i)] for i in idx]
        sizes = np.array([g.n_atoms for g in gs], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        edge_index = np.concatenate([g.edge_index + o for g, o in zip(gs, offsets)], axis=1)
        bond_type = np.concatenate([g.bond_type for g in gs])
        t = lambda a, dtype: torch.as_tensor(a, dtype=dtype).to(device)  # noqa: E731
        out = GraphBatch(
            x=t(np.concatenate([self._x[int(i)] for i in idx]), torch.float32),
            z=t(np.concatenate([g.z for g in gs]), torch.long),
            edge_index=t(edge_index, torch.long),
            edge_attr=t(np.eye(N_BOND_FEATURES, dtype=np.float32)[bond_type], torch.float32),
            batch=t(np.repeat(np.arange(len(gs)), sizes), torch.long),
            n_atoms=t(sizes, torch.float32),
            n_graphs=len(gs),
            element=t(element_index(np.concatenate([g.z for g in gs])), torch.long),
        )
        if self.with_pos:
            out.pos = t(np.concatenate([g.pos for g in gs]), torch.float32)
        if self.with_pairs:
            pairs, types = [], []
            for g, o in zip(gs, offsets):
                p = _pairs(g.n_atoms)
                dense = np.full((g.n_atoms, g.n_atoms), NO_BOND, dtype=np.int64)
                dense[g.edge_index[0], g.edge_index[1]] = g.bond_type
                pairs.append(p + o)
                types.append(dense[p[0], p[1]])
            out.pair_index = t(np.concatenate(pairs, axis=1), torch.long)
            out.pair_type = t(np.concatenate(types), torch.long)
        return out


# ----------------------------------------------------------------------------------------- torch helpers


def scatter_sum(src: torch.Tensor, index: torch.Tensor, n: int) -> torch.Tensor:
    """Sum rows of ``src`` into ``n`` buckets given by ``index`` (plain ``index_add_``)."""
    out = src.new_zeros((n,) + tuple(src.shape[1:]))
    return out.index_add_(0, index, src)


def scatter_mean(src: torch.Tensor, index: torch.Tensor, n: int) -> torch.Tensor:
    total = scatter_sum(src, index, n)
    count = scatter_sum(torch.ones_like(index, dtype=src.dtype), index, n).clamp(min=1)
    return total / count.view((-1,) + (1,) * (src.dim() - 1))


def gaussian_rbf(d: torch.Tensor, n_rbf: int = 16, cutoff: float = 8.0) -> torch.Tensor:
    """Gaussian radial basis of distances: ``n_rbf`` centres evenly spaced on [0, cutoff]."""
    centres = torch.linspace(0.0, cutoff, n_rbf, device=d.device, dtype=d.dtype)
    width = cutoff / max(1, n_rbf - 1)
    return torch.exp(-((d.unsqueeze(-1) - centres) ** 2) / (2 * width**2))


def mlp(n_in: int, n_hidden: int, n_out: int, final_act: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Linear(n_in, n_hidden), nn.SiLU(), nn.Linear(n_hidden, n_out)]
    if final_act:
        layers.append(nn.SiLU())
    return nn.Sequential(*layers)


class AtomEmbedding(nn.Module):
    """Atom features (element one-hot + nuclear charge) to the hidden width."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.linear = nn.Linear(N_ATOM_FEATURES, hidden)

    def forward(self, b: GraphBatch) -> torch.Tensor:
        return self.linear(b.x)


class BondMessageLayer(nn.Module):
    """Message passing on the bond graph (BOOM's GCL): m_ij = phi_e(h_i, h_j, e_ij); h_i += phi_h(h_i, sum_j m_ij)."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.edge_mlp = mlp(3 * hidden, hidden, hidden, final_act=True)
        self.node_mlp = mlp(2 * hidden, hidden, hidden)

    def forward(self, h: torch.Tensor, edge_index: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        i, j = edge_index
        m = self.edge_mlp(torch.cat([h[i], h[j], e], dim=-1))
        agg = scatter_sum(m, i, h.shape[0])
        return h + self.node_mlp(torch.cat([h, agg], dim=-1))


# ----------------------------------------------------------------------------------------- readout


class GraphRegressor(nn.Module):
    """An encoder giving atom features, a per-atom head (BOOM's Linear-Softsign-Linear) and the kit's readout.

    ``readout`` is one of ``boom_kit.readout.READOUTS`` (sum / mean of per-atom scalars, a dipole of neutral
    per-atom charges or the spatial extent sum_i q_i |r_i - r_cm|^2, both from the input positions).  The
    output is in the scaled units of ``boom_kit.readout.ReadoutScaler``.
    """

    def __init__(self, encoder: nn.Module, hidden: int, readout: str, atom_scale: float = 1.0,
                 extent_scale: float = 1.0) -> None:
        super().__init__()
        from boom_kit.readout import Pool

        self.encoder = encoder
        self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.Softsign(), nn.Linear(hidden, 1))
        self.pool = Pool(readout, atom_scale, extent_scale)

    def atomic(self, b: GraphBatch) -> torch.Tensor:
        """Per-atom outputs (N,) before the readout."""
        return self.head(self.encoder(b)).squeeze(-1)

    def forward(self, b: GraphBatch) -> torch.Tensor:
        return self.pool(self.atomic(b), b.batch, b.n_graphs, element=b.element, pos=b.pos)


# ----------------------------------------------------------------------------------------- recipe


def train_and_predict(ctx, make_encoder: Callable[[int], nn.Module], with_geometry: bool,
                      with_pairs: bool = False):
    """The shared recipe of the graph models; returns a ``boom_kit.Output``.

    Graphs from SMILES (topological) or tied to the task's geometries; the readout from the task;
    validation from train only; AdamW + per-epoch exponential decay (BOOM's GNN trainer); best-validation
    weights; molecules without a geometry are left out of training and predicted as the training mean.
    Hyperparameters: hidden, epochs, batch_size, lr, weight_decay, lr_decay, clip, patience.
    """
    import boom_kit
    from boom_kit import readout, torch_loop
    from boom_kit.geometry import read_extxyz

    hidden = ctx.param("hidden")
    epochs = ctx.param("epochs")
    batch_size = ctx.param("batch_size")
    mode = readout.choose(ctx, positions=with_geometry)
    with ctx.stopwatch("featurise"):
        geoms = read_extxyz(ctx.task.path("geometries")) if with_geometry else None
        train_g, train_counts = build_graphs(ctx.train["smiles"].tolist(), ctx.train["mol_id"].tolist(), geoms)
        test_g, test_counts = build_graphs(ctx.test["smiles"].tolist(), ctx.test["mol_id"].tolist(), geoms)
    sources = {k: train_counts[k] + test_counts[k] for k in train_counts if train_counts[k] + test_counts[k]}
    ctx.note(f"graphs by source: {sources}")
    if train_counts["missing"] or test_counts["missing"]:
        ctx.note(f"{train_counts['missing']} train molecules without a geometry left out of training; "
                 f"{test_counts['missing']} test molecules without one predicted as the training mean")
    keep = np.array([g is not None for g in train_g])
    y_all = ctx.train["y"].to_numpy(dtype=np.float64)
    train_set = GraphSet([g for g in train_g if g is not None], with_pos=with_geometry, with_pairs=with_pairs)
    y = y_all[keep]
    have = np.array([g is not None for g in test_g])
    test_set = GraphSet([g for g in test_g if g is not None], with_pos=with_geometry, with_pairs=with_pairs)

    tr, va = boom_kit.validation_split(len(train_set), ctx.seed)
    fit_graphs = [train_set.graphs[i] for i in tr]
    scaler, atom_scale, extent_scale = readout.fit_readout(
        mode, y[tr], [element_index(g.z) for g in fit_graphs], [g.pos for g in fit_graphs] if with_geometry else ())
    z = scaler.transform(y, train_set.element_counts())
    device = ctx.device
    model = GraphRegressor(make_encoder(hidden), hidden, mode, atom_scale=atom_scale,
                           extent_scale=extent_scale).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=ctx.param("lr"),
                                  weight_decay=ctx.param("weight_decay"))
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=ctx.param("lr_decay"))
    z_t = torch.as_tensor(z, dtype=torch.float32, device=device)

    def step(idx: np.ndarray) -> torch.Tensor:
        rows = tr[idx]
        return torch.nn.functional.mse_loss(model(train_set.batch(rows, device)), z_t[rows])

    def predict_rows(gset: GraphSet, rows: np.ndarray) -> np.ndarray:
        return torch_loop.predict_in_batches(lambda i: model(gset.batch(rows[i], device)), len(rows), max(batch_size, 64))

    with ctx.stopwatch("train"):
        result = torch_loop.fit(
            model, optimizer, step, lambda: predict_rows(train_set, va), z[va], n_train=len(tr),
            batch_size=batch_size, epochs=epochs, seed=ctx.seed, scheduler=scheduler, scheduler_per="epoch",
            patience=ctx.param("patience") or None, clip=ctx.param("clip") or None,
            log=lambda s: print(s, flush=True))
    with ctx.stopwatch("predict"):
        z_test = predict_rows(test_set, np.arange(len(test_set)))
    y_pred = np.full(len(test_g), float(y.mean()))
    y_pred[have] = scaler.inverse(z_test, test_set.element_counts())
    return boom_kit.Output(
        y_pred=y_pred, n_parameters=torch_loop.count_parameters(model), epochs=result.epochs,
        best_epoch=result.best_epoch,
        extra={"readout": mode, "best_val_rmse_scaled": result.best_val_rmse, "per_epoch_s": result.per_epoch_s,
               "graph_sources": sources, "scaler": scaler.as_dict()},
    )

"""MACE (mace-torch 0.3.16) on 3D geometries, with the contract's physically motivated readout.

The MACE backbone (interaction + equivariant product blocks) comes from ``mace.modules``.  By default
(``readout: auto``) MACE's own energy readouts are removed and the invariant (0e) node features of every
layer feed a small MLP that gives one number per atom o_i, pooled by the kit's readout table
(``boom_kit.readout``) and brought back to the property's units inside the module:

* ``sum``    (hof, alpha, cv, zpve): y = sum_e c_e n_e + s * sum_i o_i / n_bar, c_e per-element offsets fit by
  least squares on the element counts of train, s the train residual RMS; strictly extensive.
* ``mean``   (density, homo, lumo, gap): y = mean_y + std_y * mean_i o_i; strictly intensive.
* ``dipole`` (mu): neutral charges q_i = o_i - mean_i o_i, mu = s * |sum_i q_i (r_i - r_cm)|.
* ``extent`` (r2): <R^2> = s * sum_i softplus(o_i) |r_i - r_cm|^2 / mean train extent.

``--set readout=energy`` trains the property as a MACE total energy instead (BOOM's way):
ScaleShiftMACE with per-element offsets E0 and MACE's own linear/non-linear readouts.

Neighbour lists are built once per molecule in numpy (no periodic cell).  Molecules without a geometry
are dropped from training and predicted with the train mean; both counts are noted.
"""
from __future__ import annotations

import warnings

warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=UserWarning, module=r"(torch|e3nn|ast).*")

import numpy as np  # noqa: E402

import mace  # noqa: F401  (mace must be imported before e3nn)
import torch
from e3nn import o3
from mace import modules
from mace.tools.scatter import scatter_sum

import boom_kit
from boom_kit import readout as kit_readout
from boom_kit import torch_loop, validation_split
from boom_kit.geometry import ATOMIC_NUMBERS, ELEMENTS, read_extxyz

READOUTS = (*kit_readout.READOUTS, "energy")
DTYPES = {"float32": torch.float32, "float64": torch.float64}


# ----------------------------------------------------------------------------------------- graphs
class Graphs:
    """Per-molecule element indices, positions and radius-graph edges, batched into MACE's input dict."""

    def __init__(self, geometries: list, r_max: float):
        self.species = [torch.as_tensor(g.element_index) for g in geometries]
        self.positions = [torch.as_tensor(g.positions, dtype=torch.float64) for g in geometries]
        self.edges = []
        for g in geometries:
            p = g.positions
            d = np.linalg.norm(p[:, None, :] - p[None, :, :], axis=-1)
            src, dst = np.nonzero((d < r_max) & ~np.eye(len(p), dtype=bool))
            self.edges.append(torch.as_tensor(np.stack([src, dst]), dtype=torch.long))

    def __len__(self) -> int:
        return len(self.species)

    def counts(self) -> np.ndarray:
        """(n_molecules, n_elements) element counts over the full element table."""
        return kit_readout.element_counts([s.numpy() for s in self.species])

    def avg_num_neighbors(self) -> float:
        n_atoms = sum(len(s) for s in self.species)
        return float(sum(e.shape[1] for e in self.edges) / max(1, n_atoms)) or 1.0

    def batch(self, idx, device: str, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        idx = [int(i) for i in idx]
        sizes = torch.tensor([len(self.species[i]) for i in idx])
        offsets = torch.cumsum(sizes, 0) - sizes
        species = torch.cat([self.species[i] for i in idx])
        edge_index = torch.cat([self.edges[i] + off for i, off in zip(idx, offsets.tolist())], dim=1)
        n_graphs, n_edges = len(idx), edge_index.shape[1]
        data = {
            "species": species,
            "node_attrs": torch.nn.functional.one_hot(species, len(ELEMENTS)).to(dtype),
            "positions": torch.cat([self.positions[i] for i in idx]).to(dtype),
            "edge_index": edge_index,
            "shifts": torch.zeros(n_edges, 3, dtype=dtype),
            "unit_shifts": torch.zeros(n_edges, 3, dtype=dtype),
            "cell": torch.zeros(n_graphs, 3, 3, dtype=dtype),
            "batch": torch.repeat_interleave(torch.arange(n_graphs), sizes),
            "ptr": torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(sizes, 0)]),
        }
        return {k: v.to(device) for k, v in data.items()}


# ------------------------------------------------------------------------------------------ model
def hidden_irreps(channels: int, max_L: int) -> o3.Irreps:
    """mace's --num_channels/--max_L convention: channels x (0e + 1o + ... + max_L)."""
    return o3.Irreps((channels * o3.Irreps.spherical_harmonics(max_L)).sort()[0].simplify())


class MaceProperty(torch.nn.Module):
    """A MACE backbone with a per-atom head pooled by the chosen readout; forward gives original units."""

    def __init__(self, readout: str, hp: dict, avg_num_neighbors: float, scaler: kit_readout.ReadoutScaler,
                 atom_scale: float = 1.0, extent_scale: float = 1.0, energy: tuple | None = None):
        """``scaler``: the kit's target scaling fit on train (its offsets, shift and scale become buffers);
        ``energy`` = (E0 per element, per-atom scale, per-atom shift) of ScaleShiftMACE (readout=energy)."""
        super().__init__()
        if readout not in READOUTS:
            raise ValueError(f"readout {readout!r}: choose one of auto, {', '.join(READOUTS)}")
        self.readout = readout
        block = modules.interaction_classes[hp["interaction"]]
        kwargs = dict(
            r_max=hp["r_max"], num_bessel=hp["num_bessel"], num_polynomial_cutoff=hp["num_cutoff_basis"],
            max_ell=hp["max_ell"], interaction_cls=block, interaction_cls_first=block,
            num_interactions=hp["num_interactions"], num_elements=len(ELEMENTS),
            hidden_irreps=hidden_irreps(hp["channels"], hp["max_L"]),
            MLP_irreps=o3.Irreps(f"{hp['mlp_hidden']}x0e"), avg_num_neighbors=avg_num_neighbors,
            atomic_numbers=[ATOMIC_NUMBERS[e] for e in ELEMENTS], correlation=hp["correlation"],
            gate=torch.nn.functional.silu, radial_MLP=[hp["radial_hidden"]] * 3,
        )
        if readout == "energy":
            e0, e_scale, e_shift = energy
            self.mace = modules.ScaleShiftMACE(atomic_inter_scale=e_scale, atomic_inter_shift=e_shift,
                                               atomic_energies=np.asarray(e0), **kwargs)
        else:
            self.mace = modules.MACE(atomic_energies=np.zeros(len(ELEMENTS)), **kwargs)
            self.mace.readouts = torch.nn.ModuleList()  # replaced by the head below
            scalar_idx, start = [], 0
            for product in self.mace.products:
                for mul_ir, sl in zip(product.linear.irreps_out, product.linear.irreps_out.slices()):
                    if mul_ir.ir == o3.Irrep("0e"):
                        scalar_idx.extend(range(start + sl.start, start + sl.stop))
                start += product.linear.irreps_out.dim
            self.register_buffer("scalar_idx", torch.tensor(scalar_idx, dtype=torch.long))
            width = hp["mlp_hidden"]
            self.head = torch.nn.Sequential(torch.nn.Linear(len(scalar_idx), width), torch.nn.SiLU(),
                                            torch.nn.Linear(width, 1))
            self.pool = kit_readout.Pool(readout, atom_scale, extent_scale)
        dtype = torch.get_default_dtype()
        self.register_buffer("offsets", torch.tensor(np.asarray(scaler.offsets), dtype=dtype))
        self.register_buffer("y_shift", torch.tensor(scaler.shift, dtype=dtype))
        self.register_buffer("y_scale", torch.tensor(scaler.scale, dtype=dtype))

    def forward(self, data: dict[str, torch.Tensor]) -> torch.Tensor:
        data = dict(data)
        out = self.mace(data, training=self.training, compute_force=False)
        if self.readout == "energy":
            return out["energy"]
        n_graphs = int(data["ptr"].numel() - 1)
        batch = data["batch"]
        o = self.head(out["node_feats"][:, self.scalar_idx]).squeeze(-1)
        z = self.pool(o, batch, n_graphs, element=data["species"], pos=data["positions"])
        counts = scatter_sum(data["node_attrs"], batch, dim=0, dim_size=n_graphs)  # (B, n_elements)
        return self.y_scale * z + counts @ self.offsets + self.y_shift


def energy_scaling(counts: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float, float]:
    """ScaleShiftMACE's (E0 per element, per-atom residual std, per-atom residual mean), E0 from the kit's
    least-squares element offsets (0 for elements absent from train)."""
    e0 = kit_readout.element_offsets(counts, y)
    per_atom = (y - counts @ e0) / counts.sum(1)
    std = float(per_atom.std())
    return e0, std if std > 0 else 1.0, float(per_atom.mean())


def hyperparameters(ctx: boom_kit.Context) -> dict:
    hp = {name: ctx.param(name) for name in (  # typed like their defaults in model.yaml
        "dtype", "interaction", "num_interactions", "channels", "max_L", "max_ell", "correlation", "num_bessel",
        "num_cutoff_basis", "mlp_hidden", "radial_hidden", "batch_size", "epochs", "patience", "r_max", "lr",
        "ema_decay", "clip")}
    hp["readout"] = kit_readout.choose(ctx, positions=True, allowed=READOUTS)
    if hp["dtype"] not in DTYPES:
        raise ValueError(f"dtype {hp['dtype']!r}: choose float32 or float64")
    return hp


# ------------------------------------------------------------------------------------ fit/predict
def fit_predict(ctx: boom_kit.Context) -> boom_kit.Output:
    hp = hyperparameters(ctx)
    torch.set_default_dtype(DTYPES[hp["dtype"]])
    dtype, device = DTYPES[hp["dtype"]], ctx.device
    with ctx.stopwatch("featurise"):
        geoms = read_extxyz(ctx.task.path("geometries"))
        train_ids, test_ids = ctx.train["mol_id"].tolist(), ctx.test["mol_id"].tolist()
        fit_rows, val_rows = validation_split(len(train_ids), ctx.seed)
        fit_rows = [i for i in fit_rows if train_ids[i] in geoms]
        val_rows = [i for i in val_rows if train_ids[i] in geoms]
        test_rows = [i for i, m in enumerate(test_ids) if m in geoms]
        n_train_missing = sum(m not in geoms for m in train_ids)
        if n_train_missing:
            ctx.note(f"{n_train_missing} of {len(train_ids)} training molecules have no geometry: not trained on")
        if len(test_rows) < len(test_ids):
            ctx.note(f"{len(test_ids) - len(test_rows)} of {len(test_ids)} test molecules have no geometry: "
                     "predicted with the train mean")
        if len(fit_rows) < 1 or len(val_rows) < 1:
            raise ValueError("too few training molecules with a geometry to train and validate")
        g_fit = Graphs([geoms[train_ids[i]] for i in fit_rows], hp["r_max"])
        g_val = Graphs([geoms[train_ids[i]] for i in val_rows], hp["r_max"])
        g_test = Graphs([geoms[test_ids[i]] for i in test_rows], hp["r_max"])

    y_all = ctx.train["y"].to_numpy(dtype=np.float64)
    y_fit, y_val = y_all[fit_rows], y_all[val_rows]
    mode = hp["readout"]
    # readout=energy keeps the sum scaler's scale for its loss; ScaleShiftMACE has its own offsets (no pool)
    scaler, atom_scale, extent_scale = kit_readout.fit_readout(
        "sum" if mode == "energy" else mode, y_fit, [s.numpy() for s in g_fit.species],
        [p.numpy() for p in g_fit.positions])
    torch.manual_seed(ctx.seed)
    model = MaceProperty(mode, hp, g_fit.avg_num_neighbors(), scaler, atom_scale, extent_scale,
                         energy=energy_scaling(g_fit.counts(), y_fit) if mode == "energy" else None).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=hp["lr"], amsgrad=True)
    ema = None
    if hp["ema_decay"] > 0:
        from torch_ema import ExponentialMovingAverage

        ema = ExponentialMovingAverage(model.parameters(), decay=hp["ema_decay"])
    y_fit_t = torch.tensor(y_fit, dtype=dtype, device=device)
    std = float(scaler.scale)

    def step(idx: np.ndarray) -> torch.Tensor:
        pred = model(g_fit.batch(idx, device, dtype))
        return torch.mean(((pred - y_fit_t[torch.as_tensor(idx, device=device)]) / std) ** 2)

    def predict(graphs: Graphs) -> np.ndarray:
        return torch_loop.predict_in_batches(lambda idx: model(graphs.batch(idx, device, dtype)),
                                             len(graphs), hp["batch_size"] * 4)

    with ctx.stopwatch("train"):
        result = torch_loop.fit(
            model, optimizer, step, lambda: predict(g_val), y_val, n_train=len(g_fit),
            batch_size=hp["batch_size"], epochs=hp["epochs"], seed=ctx.seed, patience=hp["patience"],
            clip=hp["clip"] or None, ema=ema,
        )
    with ctx.stopwatch("predict"):
        y_pred = np.full(len(test_ids), float(y_all.mean()), dtype=np.float64)
        y_pred[test_rows] = predict(g_test)
    return boom_kit.Output(
        y_pred=y_pred, n_parameters=torch_loop.count_parameters(model), epochs=result.epochs,
        best_epoch=result.best_epoch,
        extra={"readout": hp["readout"], "scaler": scaler.as_dict(), "dtype": hp["dtype"], "hidden_irreps": str(hidden_irreps(hp["channels"], hp["max_L"])),
               "avg_num_neighbors": g_fit.avg_num_neighbors(), "best_val_rmse": result.best_val_rmse,
               "per_epoch_s": result.per_epoch_s},
    )


if __name__ == "__main__":
    boom_kit.run(fit_predict, packages=["mace-torch", "e3nn", "torch-ema"])

"""The shared recipe of the point-cloud models (``et``, ``graphormer3d``): one call from task to predictions.

Point clouds from the task's geometries; the readout from the kit's table (``boom_kit.readout``) fit on the
training molecules of the seeded validation split; AdamW with a linear warmup and cosine decay stepped per
batch; the best-validation weights predict; molecules without a geometry are left out of training and get
the train mean.  A model gives its network (``build``), how its forward takes a batch (``layout``: flat atoms
with a batch vector, or padded with a mask), its optimiser's extra arguments, and optional hooks (a checkpoint
loaded before training, an EMA of the weights, something saved after training).

Hyperparameters read (each model.yaml declares them): readout, batch_size, epochs, lr, weight_decay,
warmup_steps, clip.
"""
from __future__ import annotations

from typing import Any, Callable, Literal, Optional

import numpy as np

from boom_kit.geometry import missing_geometries, read_extxyz
from boom_kit.pointcloud import PointClouds


def load_point_clouds(ctx) -> tuple[PointClouds, PointClouds]:
    """Train and test point clouds of a geometry3d task; missing geometries are noted on ``ctx``."""
    geometries = read_extxyz(ctx.task.path("geometries"))
    train = PointClouds(ctx.train["mol_id"].tolist(), geometries)
    test = PointClouds(ctx.test["mol_id"].tolist(), geometries)
    miss_train = missing_geometries(train.mol_ids, geometries)
    miss_test = missing_geometries(test.mol_ids, geometries)
    if miss_train:
        ctx.note(f"{len(miss_train)} training molecules have no 3D geometry and are left out of training")
    if miss_test:
        ctx.note(f"{len(miss_test)} test molecules have no 3D geometry and are predicted with the train mean")
    return train, test


def fit_readout(mode: str, pc: PointClouds, rows: np.ndarray, y: np.ndarray):
    """(scaler, atom_scale, extent_scale) of readout ``mode`` fit on the training molecules ``rows`` only."""
    from boom_kit import readout

    rows = np.asarray(rows, dtype=np.int64)
    return readout.fit_readout(mode, np.asarray(y, dtype=np.float64)[rows], *pc.molecules(rows))


def with_fallback(pred: np.ndarray, has_geometry: np.ndarray, fallback: float) -> np.ndarray:
    """Scatter predictions of the molecules with a geometry into a full array, ``fallback`` elsewhere."""
    out = np.full(len(has_geometry), float(fallback), dtype=np.float64)
    out[has_geometry] = pred
    return out


def train_and_predict(ctx, build: Callable[[str, float, float], Any], layout: Literal["flat", "padded"], *,
                      optimizer_kwargs: Optional[dict] = None, loaded: Optional[Callable[[Any], Optional[str]]] = None,
                      ema: Optional[Callable[[Any], Any]] = None, trained: Optional[Callable[[Any], None]] = None):
    """Train ``build(mode, atom_scale, extent_scale)`` on the task; returns a ``boom_kit.Output``.

    ``layout='flat'`` calls ``model(element, pos, batch, n_molecules)``, ``'padded'`` calls
    ``model(atoms, pos, mask)``.  ``loaded(model)`` runs right after the model is built and returns the
    checkpoint it loaded (the run's ``pretrained``) or None; ``ema(model)`` gives the weight average that
    validates and predicts; ``trained(model)`` runs after training, before prediction.
    """
    import torch

    import boom_kit
    from boom_kit import readout, torch_loop

    device = ctx.device
    with ctx.stopwatch("featurise"):
        train_pc, test_pc = load_point_clouds(ctx)
    y_all = ctx.train["y"].to_numpy(dtype=np.float64)
    mode = readout.choose(ctx, positions=True)
    tr_idx, val_idx = boom_kit.validation_split(len(y_all), ctx.seed)
    tr_idx = tr_idx[train_pc.has_geometry[tr_idx]]
    val_idx = val_idx[train_pc.has_geometry[val_idx]]
    scaler, atom_scale, extent_scale = fit_readout(mode, train_pc, tr_idx, y_all)
    z_all = torch.as_tensor(scaler.transform(y_all, train_pc.element_counts()), dtype=torch.float32)
    model = build(mode, atom_scale, extent_scale).to(device)
    pretrained = loaded(model) if loaded else None

    def forward(pc: PointClouds, idx: np.ndarray):
        if layout == "flat":
            elem, pos, batch = pc.flat(idx, device)
            return model(elem, pos, batch, len(idx))
        return model(*pc.padded(idx, device))

    def step(batch_rows):
        rows = tr_idx[batch_rows]
        return torch.nn.functional.mse_loss(forward(train_pc, rows), z_all[rows].to(device))

    bs, epochs = ctx.param("batch_size"), ctx.param("epochs")
    opt = torch.optim.AdamW(model.parameters(), lr=ctx.param("lr"), weight_decay=ctx.param("weight_decay"),
                            **(optimizer_kwargs or {}))
    steps = epochs * int(np.ceil(len(tr_idx) / bs))
    sched = torch_loop.warmup_cosine(opt, steps, ctx.param("warmup_steps"))
    average = ema(model) if ema else None

    def predict_val():
        return torch_loop.predict_in_batches(lambda i: forward(train_pc, val_idx[i]), len(val_idx), bs)

    with ctx.stopwatch("train"):
        res = torch_loop.fit(model, opt, step, predict_val, z_all[val_idx].numpy().astype(np.float64), len(tr_idx), bs,
                             epochs, ctx.seed, scheduler=sched, scheduler_per="step", ema=average,
                             clip=ctx.param("clip") or None)
    if trained:
        trained(model)
    with ctx.stopwatch("predict"):  # the model holds the best-validation (EMA) weights
        has = np.flatnonzero(test_pc.has_geometry)
        z = torch_loop.predict_in_batches(lambda i: forward(test_pc, has[i]), len(has), bs)
        y_pred = with_fallback(scaler.inverse(z, test_pc.element_counts(has)), test_pc.has_geometry,
                               float(y_all.mean()))
    return boom_kit.Output(y_pred=y_pred, n_parameters=torch_loop.count_parameters(model), epochs=res.epochs,
                           best_epoch=res.best_epoch, pretrained=pretrained,
                           extra={"readout": mode, "scaler": scaler.as_dict(), "best_val_rmse_scaled": res.best_val_rmse,
                                  "history": res.history})

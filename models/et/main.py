"""TorchMD-Net's Equivariant Transformer on the task's 3D geometries.

Readout from the kit's table (``boom_kit.readout``; ``readout: auto`` in model.yaml): mean for intensive
properties, sum with per-element offsets fit on train for extensive ones (size-extensive: two far-apart
copies predict twice), TorchMD-Net's dipole head for mu and its electronic-spatial-extent head
sum_i q_i |r_i - r_cm|^2 for r2.  Validation is the seeded slice of train, the best-validation weights
predict.  Molecules without a geometry get the train mean.  ``checkpoint=<path>`` loads pretrained weights
strictly before training (hard error if the file is missing or does not fit the architecture) and is
recorded as the run's ``pretrained``; ``save_checkpoint=true`` writes ``et.pt``.
"""
from pathlib import Path

import numpy as np
import torch

import boom_kit
from boom_kit import readout, torch_loop
from boom_kit.pointcloud import fit_readout, load_point_clouds, warmup_cosine, with_fallback
from etnet import EquivariantTransformer


def architecture(ctx: boom_kit.Context, mode: str, atom_scale: float, extent_scale: float) -> dict:
    return dict(hidden=int(ctx.param("hidden_channels", 256)), layers=int(ctx.param("num_layers", 8)),
                heads=int(ctx.param("num_heads", 8)), num_rbf=int(ctx.param("num_rbf", 64)),
                cutoff=float(ctx.param("cutoff", 5.0)), readout=mode, atom_scale=atom_scale,
                extent_scale=extent_scale, max_neighbors=int(ctx.param("max_neighbors", 32)))


def load_checkpoint(model: torch.nn.Module, path: str) -> None:
    """Strict load of a checkpoint (a state dict, or a dict holding one under 'state_dict')."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"checkpoint {path} is not a readable torch state dict ({type(exc).__name__})") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        raise ValueError(
            f"checkpoint {path} does not match the architecture: {len(missing)} missing "
            f"{missing[:3]}, {len(unexpected)} unexpected {unexpected[:3]}, {len(shapes)} shape mismatches {shapes[:3]}")
    model.load_state_dict(state, strict=True)


def fit_predict(ctx: boom_kit.Context) -> boom_kit.Output:
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
    arch = architecture(ctx, mode, atom_scale, extent_scale)
    model = EquivariantTransformer(**arch).to(device)
    pretrained = str(ctx.param("checkpoint")) if ctx.param("checkpoint") else None
    if pretrained:
        load_checkpoint(model, pretrained)
        ctx.note(f"initialised from checkpoint {pretrained}")

    def forward(pc, idx):
        elem, pos, batch = pc.flat(idx, device)
        return model(elem, pos, batch, len(idx))

    def step(batch_rows):
        rows = tr_idx[batch_rows]
        return torch.nn.functional.mse_loss(forward(train_pc, rows), z_all[rows].to(device))

    bs = int(ctx.param("batch_size", 64))
    epochs = int(ctx.param("epochs", 20))
    opt = torch.optim.AdamW(model.parameters(), lr=float(ctx.param("lr", 4e-4)),
                            weight_decay=float(ctx.param("weight_decay", 0.0)))
    steps = epochs * int(np.ceil(len(tr_idx) / bs))
    sched = warmup_cosine(opt, steps, int(ctx.param("warmup_steps", 1000)))

    def predict_val():
        return torch_loop.predict_in_batches(lambda i: forward(train_pc, val_idx[i]), len(val_idx), bs)

    with ctx.stopwatch("train"):
        res = torch_loop.fit(model, opt, step, predict_val, z_all[val_idx].numpy().astype(np.float64), len(tr_idx), bs,
                             epochs, ctx.seed, scheduler=sched, scheduler_per="step",
                             clip=float(ctx.param("clip", 10.0)) or None)
    if ctx.param("save_checkpoint", False) in (True, "true", "True", 1, "1"):
        torch.save({"state_dict": model.state_dict(), "architecture": arch},
                   ctx.artefact("et.pt"))
    with ctx.stopwatch("predict"):
        has = np.flatnonzero(test_pc.has_geometry)
        z = torch_loop.predict_in_batches(lambda i: forward(test_pc, has[i]), len(has), bs)
        y_pred = with_fallback(scaler.inverse(z, test_pc.element_counts(has)), test_pc.has_geometry,
                               float(y_all.mean()))
    return boom_kit.Output(y_pred=y_pred, n_parameters=torch_loop.count_parameters(model), epochs=res.epochs,
                           best_epoch=res.best_epoch, pretrained=pretrained,
                           extra={"readout": mode, "scaler": scaler.as_dict(), "best_val_rmse_scaled": res.best_val_rmse,
                                  "history": res.history})


if __name__ == "__main__":
    boom_kit.run(fit_predict, packages=["torch"])

"""Graphormer-3D on the task's 3D geometries, with EMA weights for validation and prediction.

Readout from the kit's table (``boom_kit.readout``; ``readout: auto`` in model.yaml): mean for intensive
properties, sum with per-element offsets fit on train for extensive ones, a dipole of neutral atomic charges
for mu, the electronic spatial extent sum_i q_i |r_i - r_cm|^2 for r2.  Validation is the seeded slice of
train; the best-validation EMA weights predict.  Molecules without a geometry get the train mean.
"""
import numpy as np
import torch
from torch_ema import ExponentialMovingAverage

import boom_kit
from boom_kit import readout, torch_loop
from boom_kit.pointcloud import fit_readout, load_point_clouds, warmup_cosine, with_fallback
from g3dnet import Graphormer3D


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

    model = Graphormer3D(
        embed=int(ctx.param("embed_dim", 256)), layers=int(ctx.param("layers", 6)),
        heads=int(ctx.param("attention_heads", 16)), ffn=int(ctx.param("ffn_embed_dim", 256)),
        blocks=int(ctx.param("blocks", 1)), num_kernel=int(ctx.param("num_kernel", 128)),
        dropout=float(ctx.param("dropout", 0.0)), attn_dropout=float(ctx.param("attention_dropout", 0.1)),
        input_dropout=float(ctx.param("input_dropout", 0.0)), readout=mode, atom_scale=atom_scale,
        extent_scale=extent_scale,
    ).to(device)

    def forward(pc, idx):
        atoms, pos, mask = pc.padded(idx, device)
        return model(atoms, pos, mask)

    def step(batch_rows):
        rows = tr_idx[batch_rows]
        return torch.nn.functional.mse_loss(forward(train_pc, rows), z_all[rows].to(device))

    bs = int(ctx.param("batch_size", 64))
    epochs = int(ctx.param("epochs", 20))
    opt = torch.optim.AdamW(model.parameters(), lr=float(ctx.param("lr", 3e-4)), betas=(0.9, 0.98), eps=1e-6,
                            weight_decay=float(ctx.param("weight_decay", 0.001)))
    steps = epochs * int(np.ceil(len(tr_idx) / bs))
    sched = warmup_cosine(opt, steps, int(ctx.param("warmup_steps", 1000)))
    ema = ExponentialMovingAverage(model.parameters(), decay=float(ctx.param("ema_decay", 0.999)))

    def predict_val():
        return torch_loop.predict_in_batches(lambda i: forward(train_pc, val_idx[i]), len(val_idx), bs)

    with ctx.stopwatch("train"):
        res = torch_loop.fit(model, opt, step, predict_val, z_all[val_idx].numpy().astype(np.float64), len(tr_idx), bs,
                             epochs, ctx.seed, scheduler=sched, scheduler_per="step", ema=ema,
                             clip=float(ctx.param("clip", 5.0)) or None)
    with ctx.stopwatch("predict"):  # the model now holds the best-validation EMA weights
        has = np.flatnonzero(test_pc.has_geometry)
        z = torch_loop.predict_in_batches(lambda i: forward(test_pc, has[i]), len(has), bs)
        y_pred = with_fallback(scaler.inverse(z, test_pc.element_counts(has)), test_pc.has_geometry,
                               float(y_all.mean()))
    return boom_kit.Output(y_pred=y_pred, n_parameters=torch_loop.count_parameters(model), epochs=res.epochs,
                           best_epoch=res.best_epoch,
                           extra={"readout": mode, "scaler": scaler.as_dict(), "best_val_rmse_scaled": res.best_val_rmse, "history": res.history})


if __name__ == "__main__":
    boom_kit.run(fit_predict, packages=["torch", "torch-ema"])

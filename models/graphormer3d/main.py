"""Graphormer-3D on the task's 3D geometries, with EMA weights for validation and prediction.

Readout from the kit's table (``boom_kit.readout``; ``readout: auto`` in model.yaml): mean for intensive
properties, sum with per-element offsets fit on train for extensive ones, a dipole of neutral atomic charges
for mu, the electronic spatial extent sum_i q_i |r_i - r_cm|^2 for r2.  Validation is the seeded slice of
train; the best-validation EMA weights predict.  Molecules without a geometry get the train mean.
"""
from torch_ema import ExponentialMovingAverage

import boom_kit
from boom_kit.pointcloud_recipe import train_and_predict
from g3dnet import Graphormer3D


def fit_predict(ctx: boom_kit.Context) -> boom_kit.Output:
    def build(mode: str, atom_scale: float, extent_scale: float) -> Graphormer3D:
        return Graphormer3D(
            embed=ctx.param("embed_dim"), layers=ctx.param("layers"), heads=ctx.param("attention_heads"),
            ffn=ctx.param("ffn_embed_dim"), blocks=ctx.param("blocks"), num_kernel=ctx.param("num_kernel"),
            dropout=ctx.param("dropout"), attn_dropout=ctx.param("attention_dropout"),
            input_dropout=ctx.param("input_dropout"), readout=mode, atom_scale=atom_scale, extent_scale=extent_scale)

    return train_and_predict(ctx, build, "padded", optimizer_kwargs={"betas": (0.9, 0.98), "eps": 1e-6},
                             ema=lambda model: ExponentialMovingAverage(model.parameters(), decay=ctx.param("ema_decay")))


if __name__ == "__main__":
    boom_kit.run(fit_predict, packages=["torch", "torch-ema"])

"""Chemprop's D-MPNN (chemprop v2 Python API) with BOOM's settings, validated on a slice of train.

Message passing on directed bonds (hidden 300, depth 3), an aggregation over atoms, and a feed-forward
head (BOOM/chemprop-v1 ``ffn_num_layers=2``: one hidden layer and the output layer), trained with
chemprop's Noam-like schedule (1e-4 -> 1e-3 over two warm-up epochs -> 1e-4).  The target is
standardised on train with ``boom_kit.TargetScaler`` and inverted once on the final predictions; the
validation slice is ``boom_kit.validation_split``; prediction uses the best-validation checkpoint.
With ``ensemble=N`` N members (seeds seed..seed+N-1) are trained: y_pred is their mean, y_std their
standard deviation.
"""
import logging
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

import boom_kit
from boom_kit import torch_loop

# Which atom aggregation follows the property's readout (boom_schema.PROPERTIES): extensive properties
# are pooled by a size-aware sum (chemprop's "norm": sum / 100), intensive ones by the mean.
AGGREGATION_FOR_READOUT = {"sum": "norm", "mean": "mean", "dipole": "mean"}


def _quiet() -> None:
    import lightning.pytorch  # noqa: F401  (lightning sets its loggers to INFO on import; lower them after)

    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*predict_dataloader.*")
    warnings.filterwarnings("ignore", message=".*GPU available but not used.*")
    warnings.filterwarnings("ignore", module="lightning")


def _aggregation(ctx: boom_kit.Context):
    from chemprop import nn

    name = ctx.param("aggregation")
    if name == "readout":
        name = AGGREGATION_FOR_READOUT[ctx.task.readout.value]
    classes = {"mean": nn.MeanAggregation, "sum": nn.SumAggregation, "norm": nn.NormAggregation}
    if name not in classes:
        raise ValueError(f"aggregation must be readout, mean, sum or norm; got {name!r}")
    return name, classes[name]()


def _build(ctx: boom_kit.Context):
    from chemprop import models, nn

    hidden = ctx.param("hidden_size")
    ffn_num_layers = ctx.param("ffn_num_layers")
    if ffn_num_layers < 1:
        raise ValueError("ffn_num_layers counts linear layers (chemprop v1 convention) and must be >= 1")
    mp = nn.BondMessagePassing(d_h=hidden, depth=ctx.param("depth"),
                               dropout=ctx.param("dropout"))
    _, agg = _aggregation(ctx)
    ffn = nn.RegressionFFN(input_dim=mp.output_dim, hidden_dim=ctx.param("ffn_hidden_size"),
                           n_layers=ffn_num_layers - 1, dropout=ctx.param("dropout"))
    return models.MPNN(
        mp, agg, ffn, batch_norm=False,
        warmup_epochs=ctx.param("warmup_epochs"),
        init_lr=ctx.param("init_lr"), max_lr=ctx.param("max_lr"),
        final_lr=ctx.param("final_lr"),
    )


def _epoch_logger():
    """One line per epoch in the run log (lightning's progress bar and logger are off)."""
    import time

    import lightning.pytorch as pl

    class EpochLog(pl.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            self.started = time.perf_counter()

        def on_train_epoch_end(self, trainer, pl_module):  # runs after the epoch's validation
            m = trainer.callback_metrics
            train = m.get("train_loss_epoch", m.get("train_loss"))
            print(f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs} "
                  f"train_loss {float(train) if train is not None else float('nan'):.4f} "
                  f"val_loss {float(m.get('val_loss', float('nan'))):.4f} ({time.perf_counter() - self.started:.1f} s)", flush=True)

    return EpochLog()


def _train_member(ctx, seed, train_set, val_set, test_set, ckpt_dir: Path):
    """Train one member and predict the test set (scaled units) with its best-validation checkpoint.

    Returns (predictions, n_parameters, epochs, best_epoch)."""
    import lightning.pytorch as pl
    from chemprop import data, models
    from lightning.pytorch.callbacks import ModelCheckpoint

    pl.seed_everything(seed, workers=True, verbose=False)
    batch_size = ctx.param("batch_size")
    train_loader = data.build_dataloader(train_set, batch_size=batch_size, num_workers=0, seed=seed, shuffle=True)
    val_loader = data.build_dataloader(val_set, batch_size=batch_size, num_workers=0, shuffle=False)
    test_loader = data.build_dataloader(test_set, batch_size=batch_size, num_workers=0, shuffle=False)
    model = _build(ctx)
    checkpoint = ModelCheckpoint(dirpath=str(ckpt_dir), filename=f"seed{seed}-best", monitor="val_loss",
                                 mode="min", save_top_k=1, save_last=False)
    gpu = ctx.device == "cuda"
    epochs = ctx.param("epochs")
    trainer = pl.Trainer(
        accelerator="gpu" if gpu else "cpu", devices=1, max_epochs=epochs,
        logger=False, enable_progress_bar=False, enable_model_summary=False, callbacks=[checkpoint, _epoch_logger()],
        deterministic="warn" if gpu else True,  # scatter-add on CUDA has no deterministic kernel
        num_sanity_val_steps=0,
    )
    with ctx.stopwatch("train"):
        trainer.fit(model, train_loader, val_loader)
    ckpt = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=False)
    best_epoch = int(ckpt["epoch"]) + 1  # lightning counts epochs from 0
    best = models.MPNN.load_from_checkpoint(checkpoint.best_model_path, map_location="cpu")
    best.eval()
    print(f"member seed {seed}: best val_loss {float(checkpoint.best_model_score):.4f} at epoch {best_epoch}/{trainer.current_epoch}",
          flush=True)
    with ctx.stopwatch("predict"):
        preds = trainer.predict(best, test_loader)
    z = torch.cat([p.detach().cpu().double() for p in preds]).numpy().reshape(-1)
    n_params = torch_loop.count_parameters(best)
    return z, n_params, int(trainer.current_epoch), best_epoch


def fit_predict(ctx: boom_kit.Context) -> boom_kit.Output:
    _quiet()
    torch.set_num_threads(ctx.task.threads)
    from chemprop import data, featurizers

    y_scaler = boom_kit.TargetScaler().fit(ctx.train["y"].to_numpy())
    z = y_scaler.transform(ctx.train["y"].to_numpy())
    tr, va = boom_kit.validation_split(len(ctx.train), ctx.seed)
    smiles = ctx.train["smiles"].tolist()
    featurizer = featurizers.SimpleMoleculeMolGraphFeaturizer()
    with ctx.stopwatch("featurise"):
        def dataset(rows, targets):
            points = [data.MoleculeDatapoint.from_smi(smiles[i], None if targets is None else [targets[k]])
                      for k, i in enumerate(rows)]
            ds = data.MoleculeDataset(points, featurizer)
            ds.cache = True
            return ds

        train_set = dataset(tr, z[tr])
        val_set = dataset(va, z[va])
        test_points = [data.MoleculeDatapoint.from_smi(s) for s in ctx.test["smiles"]]
        test_set = data.MoleculeDataset(test_points, featurizer)
        test_set.cache = True

    n_members = ctx.param("ensemble")
    if n_members < 1:
        raise ValueError(f"ensemble must be >= 1, got {n_members}")
    members, epochs, best_epochs = [], [], []
    n_params = None
    with tempfile.TemporaryDirectory(prefix="boom-chemprop-") as tmp:
        for k in range(n_members):
            zk, n_params, ep, best = _train_member(ctx, ctx.seed + k, train_set, val_set, test_set, Path(tmp))
            members.append(zk)
            epochs.append(ep)
            best_epochs.append(best)
    stack = np.stack(members)
    agg_name, _ = _aggregation(ctx)
    return boom_kit.Output(
        y_pred=y_scaler.inverse(stack.mean(axis=0)),
        y_std=y_scaler.inverse_std(stack.std(axis=0)) if n_members > 1 else None,
        n_parameters=None if n_params is None else n_params * n_members,
        epochs=sum(epochs),
        best_epoch=best_epochs[0] if n_members == 1 else None,
        extra={"aggregation": agg_name, "ensemble": n_members, "best_epochs": best_epochs,
               "epochs_per_member": epochs},
    )


if __name__ == "__main__":
    boom_kit.run(fit_predict, packages=["chemprop", "lightning"])

"""BOOM's MLP on RDKit descriptors, with the reference code's mistakes fixed.

Same features as the random forest (``boom_kit.featurise.descriptors``, columns chosen on train).
Fixed here: the features are standardised (StandardScaler fit on the training rows after column
selection; BOOM fed raw descriptors spanning many orders of magnitude), the target is standardised on
train and inverted exactly once (BOOM inverted twice), everything is seeded, and the predictions come
from the best-validation weights, with validation carved from train by ``boom_kit.validation_split``.
"""
import numpy as np
import torch
from sklearn.preprocessing import StandardScaler

import boom_kit
from boom_kit import torch_loop
from boom_kit.featurise.descriptors import train_test_descriptors


def clip_standardised(X: np.ndarray, limit: float) -> tuple[np.ndarray, int]:
    """``X`` clipped to +-limit and how many values were clipped (applied to train and test alike)."""
    n = int((np.abs(X) > limit).sum())
    return (np.clip(X, -limit, limit) if n else X), n


def build(n_in: int, hidden: int, layers: int) -> torch.nn.Sequential:
    mods: list[torch.nn.Module] = []
    width = n_in
    for _ in range(layers):
        mods += [torch.nn.Linear(width, hidden), torch.nn.ReLU()]
        width = hidden
    mods.append(torch.nn.Linear(width, 1))
    return torch.nn.Sequential(*mods)


def fit_predict(ctx: boom_kit.Context) -> boom_kit.Output:
    with ctx.stopwatch("featurise"):
        X_train, X_test, columns = train_test_descriptors(ctx.train["smiles"], ctx.test["smiles"], ctx.task.threads,
                                                           note=ctx.note)
        features = StandardScaler().fit(X_train)
        # Clip train and test features alike: a descriptor far outside the train bulk (heavy-tailed train
        # columns, OOD molecules) must not blow up, and the network must see the same range in both.
        limit = ctx.param("clip_sd")
        X_train, n_train_clipped = clip_standardised(features.transform(X_train), limit)
        X_test, n_test_clipped = clip_standardised(features.transform(X_test), limit)
        if n_train_clipped or n_test_clipped:
            ctx.note(f"standardised descriptor values beyond +-{limit:g} train std clipped: {n_train_clipped} in train, "
                     f"{n_test_clipped} in test")

    y_scaler = boom_kit.TargetScaler().fit(ctx.train["y"].to_numpy())
    z = y_scaler.transform(ctx.train["y"].to_numpy())
    tr, va = boom_kit.validation_split(len(ctx.train), ctx.seed)

    device = torch.device(ctx.device)
    Xt = torch.as_tensor(X_train, dtype=torch.float32, device=device)
    zt = torch.as_tensor(z, dtype=torch.float32, device=device)
    Xtest = torch.as_tensor(X_test, dtype=torch.float32, device=device)
    tr_t = torch.as_tensor(tr, device=device)
    va_t = torch.as_tensor(va, device=device)

    torch.manual_seed(ctx.seed)
    model = build(X_train.shape[1], ctx.param("hidden"), ctx.param("layers")).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=ctx.param("lr"),
                                 weight_decay=ctx.param("weight_decay"))
    batch_size = ctx.param("batch_size")

    def step(idx: np.ndarray) -> torch.Tensor:
        rows = tr_t[torch.as_tensor(idx, device=device)]
        return torch.nn.functional.mse_loss(model(Xt[rows]).squeeze(-1), zt[rows])

    def predict_val() -> np.ndarray:
        return torch_loop.predict_in_batches(lambda i: model(Xt[va_t[torch.as_tensor(i, device=device)]]),
                                             len(va), 4096)

    with ctx.stopwatch("train"):
        result = torch_loop.fit(
            model, optimizer, step, predict_val, y_val=z[va], n_train=len(tr), batch_size=batch_size,
            epochs=ctx.param("epochs"), seed=ctx.seed,
            patience=ctx.param("patience") or None,  # 0 = no early stopping
        )
    with ctx.stopwatch("predict"):
        model.eval()
        z_pred = torch_loop.predict_in_batches(lambda i: model(Xtest[torch.as_tensor(i, device=device)]),
                                               len(X_test), 4096)
    return boom_kit.Output(
        y_pred=y_scaler.inverse(z_pred),
        n_parameters=torch_loop.count_parameters(model),
        epochs=result.epochs,
        best_epoch=result.best_epoch,
        extra={"n_features": len(columns.names), "best_val_rmse_scaled": result.best_val_rmse},
    )


if __name__ == "__main__":
    boom_kit.run(fit_predict, packages=["torch"])

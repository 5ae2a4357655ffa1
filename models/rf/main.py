"""Random forest on RDKit descriptors: BOOM's baseline, with the reference code's mistakes fixed.

Descriptor columns are chosen on train only, the target is standardised on train and inverted once,
and the forest is seeded from the task.  The spread of the trees' predictions is reported as y_std.
"""
import numpy as np
from sklearn.ensemble import RandomForestRegressor

import boom_kit
from boom_kit.featurise.descriptors import train_test_descriptors


def fit_predict(ctx: boom_kit.Context) -> boom_kit.Output:
    with ctx.stopwatch("featurise"):
        X_train, X_test, columns = train_test_descriptors(ctx.train["smiles"], ctx.test["smiles"], ctx.task.threads,
                                                           note=ctx.note)
    scaler = boom_kit.TargetScaler().fit(ctx.train["y"].to_numpy())
    max_features = ctx.param("max_features")
    forest = RandomForestRegressor(
        n_estimators=ctx.param("n_estimators"),
        max_features=max_features if max_features in ("sqrt", "log2") else float(max_features),
        min_samples_leaf=ctx.param("min_samples_leaf"),
        random_state=ctx.seed,
        n_jobs=ctx.task.threads,
    )
    with ctx.stopwatch("train"):
        forest.fit(X_train, scaler.transform(ctx.train["y"].to_numpy()))
    with ctx.stopwatch("predict"):
        per_tree = np.stack([tree.predict(X_test) for tree in forest.estimators_])
    n_nodes = sum(tree.tree_.node_count for tree in forest.estimators_)
    return boom_kit.Output(
        y_pred=scaler.inverse(per_tree.mean(axis=0)),
        y_std=scaler.inverse_std(per_tree.std(axis=0)),
        n_parameters=int(n_nodes),
        extra={"n_features": len(columns.names)},
    )


if __name__ == "__main__":
    boom_kit.run(fit_predict, packages=["scikit-learn"])

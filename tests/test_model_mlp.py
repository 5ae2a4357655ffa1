"""MLP on RDKit descriptors: smoke runs through the local runner, and the model-specific fixes."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from tests.conftest import smoke_run


def _report(outcome) -> dict:
    return json.loads((outcome.folder / "model_report.json").read_text())


def test_mlp_smoke_density(prepared):
    outcome = smoke_run("mlp", "density")
    report = _report(outcome)
    # 2 hidden layers of 300: n_in*300 + 300 + 300*300 + 300 + 300 + 1 parameters
    n_in = report["extra"]["n_features"]
    assert report["n_parameters"] == n_in * 300 + 300 + 300 * 300 + 300 + 300 + 1
    assert report["timings"]["epochs"] == 1 and report["best_epoch"] == 1


def test_mlp_predicts_in_original_units_and_is_seeded(prepared):
    """Target scaling inverted exactly once (predictions on the training targets' scale); same seed, same run."""
    sets = {"epochs": "5", "patience": "0"}
    a = smoke_run("mlp", "density", subset=120, sets=sets, seed=3)
    pa = pd.read_csv(a.folder / "predictions.csv")  # read now: a rerun archives this folder
    task = json.loads((a.folder / "task.json").read_text())
    y = pd.read_csv(f"{task['input_dir']}/train.csv")["y"]
    b = smoke_run("mlp", "density", subset=120, sets=sets, seed=3)
    pb = pd.read_csv(b.folder / "predictions.csv")
    np.testing.assert_allclose(pa["y_pred"], pb["y_pred"], rtol=1e-6)
    span = y.max() - y.min()
    assert pa["y_pred"].between(y.min() - span, y.max() + span).all()
    # ID molecules come from the training distribution: their mean prediction sits within one training
    # std of the training mean (never-inverted predictions sit near 0, twice-inverted near mean*(1+std))
    from boom.data import tasks  # the orchestrator's labels: a model's files no longer name the split

    labels = tasks.build("density", subset=120).labels
    id_pred = pa.loc[pa["mol_id"].astype(str).isin(set(labels.loc[labels["split"] == "id", "mol_id"])), "y_pred"]
    assert len(id_pred) == (labels["split"] == "id").sum()
    assert abs(id_pred.mean() - y.mean()) < y.std()


def test_clip_standardised_counts_and_clips():
    from tests.conftest import model_module

    clip = model_module("mlp").clip_standardised
    X = np.array([[0.0, 60.0], [-70.0, 1.0]])
    out, n = clip(X, 50.0)
    assert n == 2 and out.tolist() == [[0.0, 50.0], [-50.0, 1.0]]
    same, none = clip(np.ones((2, 2)), 50.0)
    assert none == 0 and same.tolist() == [[1.0, 1.0], [1.0, 1.0]]


def _ctx(tmp_path, n_train=40, n_test=6):
    import boom_kit
    from boom_kit.runtime import Stopwatch
    from boom_schema import PROPERTIES, Task

    info = PROPERTIES["density"]
    task = Task(run_id="t", model="mlp", dataset=info.dataset, property="density", unit=info.unit,
                readout=info.readout, input_dir=str(tmp_path), output_dir=str(tmp_path / "out"),
                hyperparameters={"hidden": 8, "layers": 1, "epochs": 1, "lr": 1e-3, "batch_size": 16, "patience": 0,
                                 "weight_decay": 0.0, "clip_sd": 3.0})
    train = pd.DataFrame({"mol_id": [f"a{i}" for i in range(n_train)], "smiles": ["CCO"] * n_train,
                          "y": np.linspace(1.0, 2.0, n_train)})
    test = pd.DataFrame({"mol_id": [f"b{i}" for i in range(n_test)], "smiles": ["CCO"] * n_test})
    return boom_kit.Context(task=task, train=train, test=test, device="cpu", stopwatch=Stopwatch())


def test_train_and_test_features_are_clipped_alike_and_test_imputation_is_noted(tmp_path, monkeypatch):
    """Clipping at clip_sd applies to train as well as test (BOOM-TTE clipped test only), and test descriptor
    gaps filled with the training median are said in the run's notes."""
    from boom_kit.featurise.descriptors import DescriptorColumns
    from tests.conftest import model_module

    main = model_module("mlp")
    rng = np.random.default_rng(0)
    X_train = rng.normal(size=(40, 3))
    X_train[0, 0] = 40.0  # a heavy-tailed train column: more than 3 SD out after standardising
    X_test = rng.normal(size=(6, 3))
    X_test[1, 2], X_test[4, 1] = np.nan, np.inf
    X_test[2, 1] = 1e4

    def fake_descriptors(train_smiles, test_smiles, threads, note=None, **kwargs):
        columns = DescriptorColumns()  # the kit's own fit and imputation note, on made-up raw matrices
        return (*columns.fit_train_test(X_train, X_test, names=["a", "b", "c"], note=note), columns)

    seen = []
    real_clip = main.clip_standardised
    monkeypatch.setattr(main, "train_test_descriptors", fake_descriptors)
    monkeypatch.setattr(main, "clip_standardised", lambda X, limit: seen.append((X.shape, limit)) or real_clip(X, limit))
    ctx = _ctx(tmp_path)
    out = main.fit_predict(ctx)
    assert seen == [((40, 3), 3.0), ((6, 3), 3.0)]
    assert np.isfinite(out.y_pred).all()
    clipped = [n for n in ctx.notes if "clipped" in n]
    assert clipped and "1 in train" in clipped[0] and "1 in test" in clipped[0]
    assert any("2 non-finite descriptor values in 2 of 6 test molecules replaced by the training median" in n
               for n in ctx.notes)


def test_descriptor_columns_say_nothing_when_nothing_is_imputed():
    from boom_kit.featurise.descriptors import DescriptorColumns

    columns = DescriptorColumns().fit(np.arange(12.0).reshape(4, 3), names=["a", "b", "c"])
    columns.transform(np.ones((2, 3)))
    assert columns.imputation_note() is None

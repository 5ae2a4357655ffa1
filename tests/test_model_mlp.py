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


def test_mlp_smoke_qm9(prepared):
    smoke_run("mlp", "gap")


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

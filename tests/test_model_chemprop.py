"""Chemprop D-MPNN (chemprop v2 Python API): smoke runs, the ensemble's y_std, and the readout choice."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.conftest import smoke_run

pytest.importorskip("chemprop")


def _report(outcome) -> dict:
    return json.loads((outcome.folder / "model_report.json").read_text())


def test_chemprop_smoke_density(prepared):
    outcome = smoke_run("chemprop", "density")
    report = _report(outcome)
    assert report["extra"]["aggregation"] == "mean"  # density is intensive (mean readout)
    assert report["timings"]["epochs"] == 1 and report["best_epoch"] == 1
    assert report["n_parameters"] > 0


def test_chemprop_ensemble_gives_positive_y_std(prepared):
    outcome = smoke_run("chemprop", "density", sets={"ensemble": "2"})
    table = pd.read_csv(outcome.folder / "predictions.csv")
    assert "y_std" in table.columns
    assert table["y_std"].notna().all() and (table["y_std"] > 0).all()
    report = _report(outcome)
    assert report["extra"]["ensemble"] == 2 and len(report["extra"]["best_epochs"]) == 2
    assert outcome.scores.id.n > 0

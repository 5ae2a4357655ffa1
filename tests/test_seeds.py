"""Seeds: a different seed is a different run (id, folder, matrix cell) and, for a stochastic model, different
predictions; the same seed reproduces the same predictions."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]


def test_run_id_and_folder_depend_on_the_seed_and_nothing_else_changes() -> None:
    from boom import results

    args = ("m" * 16, {"train.csv": "a", "test.csv": "b"}, {"n_estimators": 20}, None, "cpu")
    ids = {seed: results.run_id(args[0], args[1], args[2], seed, args[3], args[4]) for seed in (0, 1, 2)}
    assert len(set(ids.values())) == 3
    assert results.run_id(args[0], args[1], args[2], 1, args[3], args[4]) == ids[1]  # stable
    folders = {results.run_dir("10k_csd", "density", "rf", rid, root=Path("/r")) for rid in ids.values()}
    assert len(folders) == 3
    # and every other input is in the id as well
    base = ids[0]
    assert results.run_id("n" * 16, args[1], args[2], 0, None, "cpu") != base
    assert results.run_id(args[0], {"train.csv": "c", "test.csv": "b"}, args[2], 0, None, "cpu") != base
    assert results.run_id(args[0], args[1], {"n_estimators": 21}, 0, None, "cpu") != base
    assert results.run_id(args[0], args[1], args[2], 0, "n60", "cpu") != base
    assert results.run_id(args[0], args[1], args[2], 0, None, "cuda") != base


def test_matrix_has_one_cell_per_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    from boom import matrix

    monkeypatch.setenv("BOOM_MODELS_DIR", str(REPO / "tests" / "fixtures" / "models"))
    cells = matrix.cells(["broken"], ["density"], [0, 3, 7])
    assert [c.seed for c in cells] == [0, 3, 7] and len(set(cells)) == 3


def _predictions(outcome) -> pd.Series:
    table = pd.read_csv(outcome.folder / "predictions.csv", dtype={"mol_id": str})
    return table.set_index("mol_id")["y_pred"].sort_index()


@pytest.mark.model
def test_rf_seed_changes_predictions_and_repeats_them(prepared) -> None:
    from tests.conftest import smoke_run

    sets = {"n_estimators": "5"}
    a = smoke_run("rf", "density", subset=40, sets=sets, seed=0)
    b = smoke_run("rf", "density", subset=40, sets=sets, seed=1)
    again = smoke_run("rf", "density", subset=40, sets=sets, seed=0)
    assert a.record.run_id != b.record.run_id and a.folder != b.folder
    assert a.record.run_id == again.record.run_id
    pa, pb = _predictions(a), _predictions(b)
    assert list(pa.index) == list(pb.index)
    assert not pa.equals(pb), "rf gave identical predictions for seeds 0 and 1: the seed does not reach the model"
    assert pa.equals(_predictions(again))

"""The Python API (boom.load_task / evaluate / runs / leaderboard) and `boom score`, on the real 10k data.

evaluate must be the scorer of a run, not a copy: its scores of a run's own predictions.csv equal the run's
scores.json, and a bad file gets the run's one-line reason word for word.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

FIXTURES = Path(__file__).parent / "fixtures" / "models"
SUBSET = 40


def _labels(prop: str, subset=SUBSET) -> pd.DataFrame:
    """The orchestrator's test labels (mol_id, split, y): what evaluate must score against."""
    from boom.data import tasks

    return tasks.build(prop, subset=subset).labels


def _fixture_run(monkeypatch, mode: str):
    """`boom run broken density --set mode=MODE` on the subset: (record, scores or None, run folder)."""
    from boom import paths, results
    from boom.cli import main

    monkeypatch.setenv("BOOM_MODELS_DIR", str(FIXTURES))
    args = ["run", "broken", "density", "--subset", str(SUBSET), "--set", f"mode={mode}", "--threads", "1", "--force"]
    out = CliRunner().invoke(main, args)
    assert out.exit_code in (0, 1), out.output
    found = [(rec, sc, folder) for rec, sc, folder in results.iter_runs(paths.results_dir())
             if rec.model == "broken" and rec.hyperparameters.get("mode") == mode and rec.subset == f"n{SUBSET}"]
    assert len(found) == 1, out.output
    return found[0]


def test_import_boom_is_cheap_and_the_api_is_there() -> None:
    code = ("import sys, boom; heavy = [m for m in ('pandas', 'rdkit', 'boom.api') if m in sys.modules]; "
            "assert not heavy, heavy; assert callable(boom.evaluate) and 'pandas' in sys.modules; "
            "print(sorted(n for n in ('load_task', 'evaluate', 'runs', 'leaderboard') if n in dir(boom)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['evaluate', 'leaderboard', 'load_task', 'runs']"


def test_load_task_is_the_blind_view_a_model_gets(prepared) -> None:
    import boom

    task = boom.load_task("density", subset=SUBSET)
    assert list(task.train.columns) == ["mol_id", "smiles", "y"]
    assert list(task.test.columns) == ["mol_id", "smiles"]  # no label, no split
    assert task.geometries is None and task.unit == "g/cm^3" and task.subset == f"n{SUBSET}"
    labels = _labels("density")
    assert set(task.test["mol_id"]) == set(labels["mol_id"]) and len(task.test) == len(labels)
    assert not set(task.test["mol_id"]) & set(task.train["mol_id"])
    assert len(task.train) == SUBSET and task.train["y"].notna().all()
    # the same file a model reads, in its shuffled order (not ID first, then OOD)
    on_disk = pd.read_csv(task.input_dir / "test.csv", dtype=str)
    assert on_disk.equals(task.test.astype(str))
    assert task.test["mol_id"].tolist() != labels["mol_id"].tolist()
    train, test = task
    assert train is task.train and test is task.test


def test_load_task_geometries_for_qm9(prepared) -> None:
    import boom

    task = boom.load_task("mu", subset=SUBSET)
    wanted = set(task.train["mol_id"]) | set(task.test["mol_id"])
    assert set(task.geometries) == wanted  # qm9's DFT coordinates: every molecule has one
    g = task.geometries[task.test["mol_id"].iloc[0]]
    assert g.positions.shape == (len(g.symbols), 3)


def test_perfect_prediction_scores_zero(prepared) -> None:
    import boom

    labels = _labels("density")
    scores = boom.evaluate("density", labels[["mol_id", "y"]].rename(columns={"y": "y_pred"}), subset=SUBSET)
    for split in (scores.id, scores.ood):
        assert split.rmse == 0.0 and split.mae == 0.0 and split.max_error == 0.0 and split.r2 == 1.0
    assert scores.id.n == (labels["split"] == "id").sum() and scores.ood.n == (labels["split"] == "ood").sum()
    assert scores.property == "density" and scores.model == "external"


def test_row_order_does_not_change_the_scores(prepared, tmp_path: Path) -> None:
    import boom

    labels = _labels("density")
    rng = np.random.default_rng(1)
    preds = pd.DataFrame({"mol_id": labels["mol_id"], "y_pred": labels["y"] + rng.normal(0, 0.05, len(labels)),
                          "y_std": rng.uniform(0.01, 0.1, len(labels))})
    preds.to_csv(tmp_path / "in_order.csv", index=False, float_format="%.17g")
    preds.sample(frac=1.0, random_state=3).to_csv(tmp_path / "shuffled.csv", index=False, float_format="%.17g")
    a = boom.evaluate("density", tmp_path / "in_order.csv", subset=SUBSET)
    b = boom.evaluate("density", str(tmp_path / "shuffled.csv"), subset=SUBSET)
    c = boom.evaluate("density", preds, subset=SUBSET)
    assert a.model_dump() == b.model_dump() == c.model_dump()
    assert a.ood.rmse > 0 and a.id.mean_y_std is not None
    err = preds.set_index("mol_id")["y_pred"] - labels.set_index("mol_id")["y"]
    ood = labels.loc[labels["split"] == "ood", "mol_id"]
    assert a.ood.rmse == pytest.approx(float(np.sqrt((err[ood] ** 2).mean())), rel=1e-12)


def test_evaluate_gives_a_runs_scores_and_its_error(prepared, monkeypatch) -> None:
    import boom
    from boom_schema import PredictionsError

    record, run_scores, folder = _fixture_run(monkeypatch, "ok")
    assert record.status.value == "ok", record.reason
    mine = boom.evaluate("density", folder / "predictions.csv", subset=SUBSET)
    assert mine.id == run_scores.id and mine.ood == run_scores.ood and mine.split_sha256 == run_scores.split_sha256

    record, _, folder = _fixture_run(monkeypatch, "bad_ids")
    assert record.status.value == "failed" and record.reason.startswith("invalid predictions: ")
    with pytest.raises(PredictionsError) as exc:
        boom.evaluate("density", folder / "predictions.csv", subset=SUBSET)
    assert str(exc.value) == record.reason

    from boom.cli import main

    result = CliRunner().invoke(main, ["score", "density", str(folder / "predictions.csv"), "--subset", str(SUBSET)])
    assert result.exit_code == 1 and result.output.strip() == f"Error: {record.reason}"


def test_boom_score_command(prepared, tmp_path: Path) -> None:
    from boom.cli import main
    from boom_schema import Scores

    labels = _labels("density")
    path = tmp_path / "perfect.csv"
    labels[["mol_id", "y"]].rename(columns={"y": "y_pred"}).to_csv(path, index=False, float_format="%.17g")
    result = CliRunner().invoke(main, ["score", "density", str(path), "--subset", str(SUBSET)])
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split() for line in result.output.splitlines()[2:4]}
    assert rows["id"][2] == "0" and rows["ood"][2] == "0"  # rmse column
    # --json is a run's scores.json (noisy predictions: a perfect ID split makes the OOD/ID ratio infinite)
    noisy = labels[["mol_id"]].assign(y_pred=labels["y"] + np.random.default_rng(2).normal(0, 0.05, len(labels)))
    noisy.to_csv(path, index=False, float_format="%.17g")
    result = CliRunner().invoke(main, ["score", "density", str(path), "--subset", str(SUBSET), "--json"])
    assert result.exit_code == 0, result.output
    import boom

    assert Scores.model_validate(json.loads(result.output)) == boom.evaluate("density", path, subset=SUBSET)


@pytest.mark.parametrize("args, fragment", [
    (["score", "densty", "{f}"], "unknown property 'densty'"),
    (["score", "density", "{missing}"], "no such file; pass the predictions CSV file"),
])
def test_boom_score_bad_input_is_one_line(prepared, tmp_path: Path, args: list[str], fragment: str) -> None:
    from boom.cli import main

    f = tmp_path / "p.csv"
    f.write_text("mol_id,y_pred\n")
    args = [a.format(f=f, missing=tmp_path / "nope.csv") for a in args]
    result = CliRunner().invoke(main, args)
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and fragment in lines[0], result.output


def test_runs_and_leaderboard_frames(prepared, monkeypatch, tmp_path: Path) -> None:
    import boom

    monkeypatch.setenv("BOOM_RESULTS_DIR", str(tmp_path / "results"))
    record, run_scores, _ = _fixture_run(monkeypatch, "ok")
    runs = boom.runs()
    row = runs.set_index("run_id").loc[record.run_id]
    assert row["status"] == "ok" and row["model"] == "broken"
    assert row["ood_rmse"] == pytest.approx(run_scores.ood.rmse)
    board = boom.leaderboard(root=tmp_path / "results")
    assert isinstance(board, pd.DataFrame) and (board["model"] == "broken").sum() == 1

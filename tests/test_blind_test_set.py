"""Contract 2: no file a model receives names or orders the test molecules by split, under any runner."""
import json
import os

import numpy as np
import pandas as pd
import pytest

from boom.data import tasks


@pytest.mark.parametrize("prop", ["density", "gap"])
def test_input_folder_is_train_and_one_blind_test_file(prepared, prop):
    data = tasks.build(prop)
    names = sorted(p.name for p in data.input_dir.iterdir())
    assert names == ["done.json", "test.csv", "train.csv"]
    test = pd.read_csv(data.input_dir / "test.csv", dtype={"mol_id": str})
    assert test.columns.tolist() == ["mol_id", "smiles"]
    assert set(test["mol_id"]) == data.expected == set(data.labels["mol_id"])
    assert "split" not in (data.input_dir / "done.json").read_text()
    # the order says nothing: OOD rows are spread over the file like a random draw would spread them
    is_ood = test["mol_id"].map(dict(zip(data.labels["mol_id"], data.labels["split"]))).eq("ood").to_numpy()
    pos = np.flatnonzero(is_ood) / (len(test) - 1)
    n = is_ood.sum()
    assert abs(pos.mean() - 0.5) < 4 * np.sqrt(1 / 12 / n), "OOD molecules cluster in test.csv"
    first_half = is_ood[: len(test) // 2].mean()
    assert abs(first_half - is_ood.mean()) < 0.1
    # and not in dataset order: an unshuffled file (molecule order) spreads the tail too, so the rank
    # correlation between the file's order and the dataset's order is what shows the shuffle
    from scipy.stats import spearmanr

    from boom.data.prepare import dataset_dir

    dataset_pos = pd.read_csv(dataset_dir(data.dataset) / "molecules.csv", dtype={"mol_id": str}, usecols=["mol_id"])
    rank = dict(zip(dataset_pos["mol_id"], range(len(dataset_pos))))
    rho = spearmanr(np.arange(len(test)), test["mol_id"].map(rank)).statistic
    assert abs(rho) < 0.1, f"test.csv follows the dataset order (Spearman {rho:.3f})"


def test_train_subset_keeps_the_full_test_sets(prepared):
    full = tasks.build("hof")
    small = tasks.build("hof", train_subset=500)
    assert len(pd.read_csv(small.input_dir / "train.csv")) == 500
    assert small.expected == full.expected, "reduced-budget rows are scored on exactly the full test sets"
    assert small.split_sha256 == full.split_sha256
    assert small.subset == "train500" and small.input_dir != full.input_dir
    again = tasks.build("hof", train_subset=500)
    assert again.input_dir == small.input_dir
    train_ids = set(pd.read_csv(small.input_dir / "train.csv", dtype={"mol_id": str})["mol_id"])
    assert train_ids < set(pd.read_csv(full.input_dir / "train.csv", dtype={"mol_id": str})["mol_id"])
    with pytest.raises(ValueError, match="--train-subset must be at least 2"):
        tasks.build("hof", train_subset=1)


def _runners():
    from boom.runners.apptainer import ApptainerRunner
    from boom.runners.docker import DockerRunner
    from boom.runners.local import LocalRunner

    return [LocalRunner(), DockerRunner.__new__(DockerRunner), ApptainerRunner.__new__(ApptainerRunner)]


@pytest.mark.parametrize("runner_index", [0, 1, 2], ids=["local", "docker", "apptainer"])
def test_task_json_names_no_split_under_any_runner(prepared, runner_index):
    from boom.options import RunOptions
    from boom.orchestrate import plan
    from boom_schema import Task

    runner = _runners()[runner_index]
    planned = plan("rf", "density", 0, RunOptions(subset=40))
    params, data, rid = planned.params, planned.data, planned.run_id
    task = Task(run_id=rid, model="rf", dataset="10k_csd", property="density", unit="g/cm^3", readout="mean",
                input_dir=str(data.input_dir), output_dir="/tmp/out", files=data.files, seed=0, hyperparameters=params)
    view = json.loads(runner.task_view(task).model_dump_json())
    text = json.dumps(view)
    assert "ood" not in text.lower().replace("mood", "") and '"id"' not in text
    assert set(view["files"]) == {"train", "test", "geometries"}


def test_local_runner_starts_the_model_in_its_run_folder_without_data_paths(prepared, monkeypatch):
    from pathlib import Path

    monkeypatch.setenv("BOOM_MODELS_DIR", str(Path(__file__).parent / "fixtures" / "models"))
    from boom.options import RunOptions
    from boom.orchestrate import run
    from boom.runners.local import LocalRunner

    assert os.environ.get("BOOM_DATA_DIR")
    out = run("broken", "density", LocalRunner(), RunOptions(overrides={"mode": "probe"}, subset=20, force=True))
    log = (out.folder / "log.txt").read_text()
    assert out.record.status.value == "ok", out.record.reason
    assert f"probe: cwd {out.folder}" in log
    assert "probe: orchestrator paths []" in log
    assert out.record.split_sha256 and out.scores.split_sha256 == out.record.split_sha256

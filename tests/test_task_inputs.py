"""Task input folders: no ID/OOD label can be read by a model; geometries cover every molecule or say why."""
import pandas as pd
import pytest

from boom.data import tasks
from boom.data.prepare import dataset_dir


@pytest.mark.parametrize("prop", ["density", "homo"])
def test_no_test_label_in_the_input_folder(prepared, prop):
    data = tasks.build(prop)
    folder = data.input_dir
    assert pd.read_csv(folder / "test.csv").columns.tolist() == ["mol_id", "smiles"]
    train = pd.read_csv(folder / "train.csv", dtype={"mol_id": str})
    assert train.columns.tolist() == ["mol_id", "smiles", "y"]
    test_ids = set(data.labels["mol_id"])
    assert not test_ids & set(train["mol_id"]), "a test molecule leaked into train"
    # no file of the folder contains a test label, in the precision molecules.csv stores it
    stored = pd.read_csv(dataset_dir(data.dataset) / "molecules.csv", dtype={prop: str}).set_index("mol_id")[prop]
    train_values = set(stored.loc[train["mol_id"]])
    secret = {stored[m] for m in test_ids} - train_values  # values shared with a train molecule prove nothing
    text = "\n".join(p.read_text() for p in folder.iterdir() if p.is_file())
    tokens = set(text.replace(",", "\n").split())
    assert len(secret) > 100
    assert not secret & tokens


def test_subset_is_seeded_and_sized(prepared):
    a = tasks.build("hof", subset=80)
    b = tasks.build("hof", subset=80)
    assert a.input_dir == b.input_dir
    assert len(pd.read_csv(a.input_dir / "train.csv")) == 80
    assert (a.labels["split"] == "id").sum() == 20 and (a.labels["split"] == "ood").sum() == 20


def test_qm9_geometries_cover_every_molecule(prepared):
    from boom_kit.geometry import read_extxyz

    data = tasks.build("mu", subset=40, with_geometry=True)
    geoms = read_extxyz(data.input_dir / "geometries.extxyz")
    ids = set(pd.read_csv(data.input_dir / "train.csv")["mol_id"]) | set(data.labels["mol_id"])
    assert set(geoms) == ids
    g = next(iter(geoms.values()))
    assert g.positions.shape == (len(g.symbols), 3)


def test_10k_conformers_are_seeded_and_readable_by_ase(prepared):
    import ase.io

    data = tasks.build("density", subset=12, with_geometry=True)
    frames = ase.io.read(data.input_dir / "geometries.extxyz", ":")
    assert len(frames) >= 1 and all("mol_id" in f.info for f in frames)
    from boom.data.geometry import embed

    smiles = "CC(=O)Nc1ccc(O)cc1"
    assert embed(smiles) == embed(smiles), "conformers are seeded"


def test_task_files_read_back_through_the_contract(prepared):
    """What tasks.build writes, boom_schema reads back: train labels exactly, every test id and its smiles."""
    from boom_schema import read_test, read_train

    data = tasks.build("hof", subset=80)
    train = read_train(data.input_dir / data.files.train)
    test = read_test(data.input_dir / data.files.test)
    stored = pd.read_csv(dataset_dir(data.dataset) / "molecules.csv", dtype={"mol_id": str},
                         float_precision="round_trip").set_index("mol_id")
    assert len(train) == 80 and train.y == stored.loc[train.mol_id, "hof"].tolist()
    assert test.y is None and len(test) == len(data.labels)
    assert set(test.mol_id) == set(data.labels["mol_id"])
    assert test.smiles == stored.loc[test.mol_id, "smiles"].tolist()

"""BOOM's split definition: exact counts, disjoint and complete splits, the KDE itself, idempotence."""
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from boom.data import splits
from boom.data.prepare import dataset_dir, prepare

EXPECTED_10K = {"density": (8766, 440, 1000), "hof": (8783, 423, 1000)}
EXPECTED_QM9 = (114848, 5983, 10000)
QM9_PROPS = ["mu", "alpha", "homo", "lumo", "gap", "r2", "zpve", "cv"]


def _counts(dataset: str, prop: str) -> tuple[int, int, int]:
    s = pd.read_csv(dataset_dir(dataset) / "splits" / f"{prop}.csv")["split"]
    return int((s == "train").sum()), int((s == "id").sum()), int((s == "ood").sum())


@pytest.mark.parametrize("prop", ["density", "hof"])
def test_10k_counts(prepared, prop):
    assert _counts("10k_csd", prop) == EXPECTED_10K[prop]


@pytest.mark.parametrize("prop", QM9_PROPS)
def test_qm9_counts(prepared, prop):
    assert _counts("qm9", prop) == EXPECTED_QM9


@pytest.mark.parametrize("dataset,prop", [("10k_csd", "density"), ("10k_csd", "hof"), ("qm9", "homo"), ("qm9", "zpve")])
def test_splits_disjoint_complete_and_tail(prepared, dataset, prop):
    mols = pd.read_csv(dataset_dir(dataset) / "molecules.csv")
    s = pd.read_csv(dataset_dir(dataset) / "splits" / f"{prop}.csv")
    assert (s["mol_id"] == mols["mol_id"]).all(), "one row per molecule, same order"
    assert s["mol_id"].is_unique
    assert set(s["split"]) == {"train", "id", "ood"}
    # OOD = lowest KDE densities: every OOD density <= every non-OOD density
    ood = s["split"] == "ood"
    assert s.loc[ood, "kde_density"].max() <= s.loc[~ood, "kde_density"].min()


def test_10k_split_matches_sklearn_kde_ordering(prepared):
    """Our exact fast KDE selects the same OOD molecules as scikit-learn's KernelDensity('scott')."""
    from sklearn.neighbors import KernelDensity

    mols = pd.read_csv(dataset_dir("10k_csd") / "molecules.csv")
    for prop in ("density", "hof"):
        x = mols[prop].to_numpy().reshape(-1, 1)
        ref = np.exp(KernelDensity(kernel="gaussian", bandwidth="scott").fit(x).score_samples(x))
        ours = splits.kde_density(x.ravel())
        np.testing.assert_allclose(ours, ref, rtol=1e-10)
        ref_ood = np.zeros(len(x), bool)
        ref_ood[np.argpartition(ref, 1000)[:1000]] = True
        ours_ood = pd.read_csv(dataset_dir("10k_csd") / "splits" / f"{prop}.csv")["split"].to_numpy() == "ood"
        assert (ref_ood == ours_ood).all()


@pytest.mark.parametrize("scale", [0.01, 1.0, 40.0])
def test_direct_and_taylor_sums_equal_brute_force(scale):
    rng = np.random.default_rng(1)
    x = np.round(rng.normal(0, scale, 2500), 2)  # rounding creates ties
    h = splits.scott_bandwidth(x.size)
    brute = np.exp(-0.5 * ((x[:, None] - x[None, :]) / h) ** 2).sum(1)
    uniq, inv, counts = np.unique(x, return_inverse=True, return_counts=True)
    for fn in (splits._direct_sums, splits._taylor_sums):
        got = fn(uniq, counts.astype(float), h)[inv]
        np.testing.assert_allclose(got, brute, rtol=1e-11)
    d = splits.kde_density(x)
    assert (d[x == x[0]] == d[0]).all(), "tied values get bit-identical densities"


def test_id_draws_follow_the_reference_stream():
    ood = np.array([False, True, False, False])
    got = splits.assign_per_property(ood)
    import random

    rng = random.Random(42)
    want = []
    for o in ood:
        want.append("ood" if o else ("id" if rng.random() < 0.05 else "train"))
    assert list(got) == want


def test_prepare_is_idempotent_and_detects_tampering(prepared):
    m1 = json.loads((dataset_dir("10k_csd") / "manifest.json").read_text())
    m2 = prepare("10k_csd")
    assert m2["created"] == m1["created"], "a current dataset is not recomputed"
    path = dataset_dir("10k_csd") / "splits" / "hof.csv"
    backup = path.read_bytes()
    path.write_text("tampered\n")
    m3 = prepare("10k_csd")
    assert path.read_bytes() == backup and m3["properties"]["hof"]["counts"]["ood"] == 1000


def test_missing_raw_data_gives_a_clear_error(tmp_path, monkeypatch, boom_env):
    from boom.data.llnl10k import RawDataError, load

    with pytest.raises(RawDataError, match="not found in raw-data folder"):
        load(tmp_path, tmp_path / "dl")


def test_modified_raw_file_is_rejected(tmp_path):
    from boom.data.llnl10k import FILES, RawDataError, load

    raw = Path(os.environ["BOOM_RAW_DIR"])  # the raw-data folder the suite runs with (CI sets it)
    for name in FILES:
        shutil.copy(raw / name, tmp_path / name)
    with open(tmp_path / "10k_dft_hof_data.csv", "a") as fh:
        fh.write("C,1.0\n")
    with pytest.raises(RawDataError, match="sha256"):
        load(tmp_path, tmp_path / "dl")

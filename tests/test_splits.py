"""BOOM's split definition: exact counts, disjoint and complete splits, the KDE itself, idempotence."""
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from boom.data import splits
from boom.data.prepare import dataset_dir, prepare, verify

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
    phases = m1["phase_seconds"]  # bench/split_prep.py reports these
    assert set(phases) == {"load", "splits", "write"} and all(v >= 0 for v in phases.values())
    assert sum(phases.values()) <= m1["seconds"] + 0.05
    path = dataset_dir("10k_csd") / "splits" / "hof.csv"
    backup = path.read_bytes()
    path.write_text("tampered\n")
    m3 = prepare("10k_csd")
    assert path.read_bytes() == backup and m3["properties"]["hof"]["counts"]["ood"] == 1000


@pytest.mark.parametrize("dataset", ["10k_csd", "qm9"])
def test_a_current_dataset_is_recognised_without_parsing_its_source(prepared, monkeypatch, dataset):
    """prepare() on an up-to-date folder checks digests only: the source table (qm9: seconds to parse) is not
    loaded.  Every `boom run` and every test session calls it."""
    from boom.data import prepare as prep

    created = json.loads((dataset_dir(dataset) / "manifest.json").read_text())["created"]

    def refuse(*_a, **_k):
        raise AssertionError("the source was parsed although the prepared folder is current")

    monkeypatch.setattr(prep, "_load_source", refuse)
    assert prepare(dataset)["created"] == created


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


# -- contract 2: portable, pinned splits ---------------------------------------------------------------
from boom.data import pinned  # noqa: E402


@pytest.mark.parametrize("dataset,prop", [("10k_csd", p) for p in EXPECTED_10K] + [("qm9", p) for p in QM9_PROPS])
def test_every_prepared_split_is_the_pinned_one(prepared, dataset, prop):
    s = pd.read_csv(dataset_dir(dataset) / "splits" / f"{prop}.csv", dtype={"mol_id": str})
    assert splits.split_digest(s["mol_id"], s["split"]) == pinned.PINNED_DIGESTS[prop]
    assert pinned.differences(prop, s["split"].tolist()) == 0
    manifest = json.loads((dataset_dir(dataset) / "manifest.json").read_text())
    assert manifest["properties"][prop]["split_sha256"] == pinned.PINNED_DIGESTS[prop]


def test_stable_tie_rule_ignores_how_ties_are_ordered_in_memory():
    """Tied densities at the boundary: the lowest molecule indices win, whatever a selection routine does."""
    density = np.array([5.0, 1.0, 3.0, 3.0, 0.5, 3.0, 9.0, 3.0])
    # 0.5 and 1.0 are in; four molecules tie at 3.0 for the last two places: indices 2 and 3 win
    assert sorted(splits.lowest_k(density, 4)) == [1, 2, 3, 4]
    assert splits.boundary_ties(density, 4) == 4
    assert splits.boundary_ties(density, 2) == 0
    # the same densities computed with last-bit noise (another summation order) select the same set
    noisy = density * (1 + np.array([0, 1, -1, 2, 0, -2, 0, 1]) * 2.0**-52)
    assert sorted(splits.lowest_k(noisy, 4)) == [1, 2, 3, 4]
    # argpartition may pick any two of the tied four; the stable rule never depends on it
    for perm_seed in range(5):
        perm = np.random.default_rng(perm_seed).permutation(density.size)
        chosen = perm[splits.lowest_k(density[perm], 4)]
        ranks = {i: int(np.flatnonzero(perm == i)[0]) for i in (2, 3, 5, 7)}
        tied_in = sorted(i for i in chosen if density[i] == 3.0)
        assert tied_in == sorted(sorted(ranks, key=ranks.get)[:2]), "ties go to the earliest molecules in order"


def test_stable_rule_is_independent_of_numpy_selection(prepared):
    """The OOD set is a pure function of the densities: the same under numpy's two sorting code paths."""
    mols = pd.read_csv(dataset_dir("qm9") / "molecules.csv")
    for prop in ("alpha", "lumo"):
        d = splits.kde_density(mols[prop].to_numpy())
        key = splits.portable_key(d)
        k = 10000
        by_mergesort = np.sort(np.argsort(key, kind="stable")[:k])
        by_lexsort = np.sort(np.lexsort((np.arange(key.size), key))[:k])  # explicit (key, index) order
        assert (by_mergesort == by_lexsort).all()
        assert splits.boundary_ties(d, k) > 1, "these properties do tie at the boundary"
        ours = pd.read_csv(dataset_dir("qm9") / "splits" / f"{prop}.csv")["split"].to_numpy() == "ood"
        assert (np.flatnonzero(ours) == by_mergesort).all()


def test_a_tampered_split_is_refused_before_any_model_runs(prepared):
    from boom.data import tasks

    path = dataset_dir("10k_csd") / "splits" / "density.csv"
    backup = path.read_bytes()
    try:
        s = pd.read_csv(path, dtype={"mol_id": str})
        i_ood = int(np.flatnonzero(s["split"].to_numpy() == "ood")[0])
        s.loc[i_ood, "split"] = "train"  # one molecule moved
        s.to_csv(path, index=False)
        with pytest.raises(pinned.SplitMismatch, match=r"density split is not the pinned benchmark split \(1 molecule"):
            tasks.build("density", subset=20)
        rows = {what: (ok, detail) for what, ok, detail in verify("10k_csd")}
        assert rows["10k_csd/density"][0] is False and "1 molecule(s)" in rows["10k_csd/density"][1]
        assert rows["10k_csd/hof"][0] is True
    finally:
        path.write_bytes(backup)
    assert all(ok for _, ok, _ in verify("10k_csd"))


def test_prepare_refuses_a_split_that_is_not_pinned(prepared, monkeypatch):
    folder = dataset_dir("10k_csd")
    before = {p: p.stat().st_mtime_ns for p in [folder / "manifest.json", *(folder / "splits").glob("*.csv")]}
    monkeypatch.setitem(pinned.PINNED_DIGESTS, "hof", "0" * 64)
    with pytest.raises(pinned.SplitMismatch, match="hof split is not the pinned benchmark split"):
        prepare("10k_csd", force=True)
    assert {p: p.stat().st_mtime_ns for p in before} == before, "nothing is written when a split is refused"
    monkeypatch.undo()
    prepare("10k_csd", force=True)


def test_id_draws_match_the_per_molecule_loop_on_a_long_mask():
    """The vectorised assignment draws exactly as BOOM's loop: one random() per non-OOD molecule, in order."""
    import random
    ood = np.random.default_rng(3).random(5000) < 0.1
    rng = random.Random(splits.SPLIT_SEED)
    loop = ["ood" if o else ("id" if rng.random() < splits.ID_FRACTION else "train") for o in ood]
    assert splits.assign_per_property(ood).tolist() == loop


def test_split_files_round_trip_exactly(tmp_path):
    """prepare's CSV writer: floats read back bit-identical, NaN as empty, fields with commas/quotes/newlines quoted."""
    from boom.data.prepare import _write_csv
    values = np.array([0.1, 1e-300, -2.5e17, np.nan, 1 / 3, 5e-324])
    text = ["a", 'say "hi"', "x,y", "line\nbreak", "plain", ""]
    path = tmp_path / "t.csv"
    _write_csv(path, {"mol_id": [f"m{i}" for i in range(6)], "text": text, "v": values})
    back = pd.read_csv(path, dtype={"mol_id": str, "text": str}, keep_default_na=False, na_values={"v": [""]})
    assert back["text"].tolist() == text
    np.testing.assert_array_equal(back["v"].to_numpy(), values)  # NaN == NaN here, every other value exact
    assert not path.with_suffix(".csv.part").exists()


def test_kde_density_is_scikit_learns_scott_kde():
    """Bandwidth n**-0.2 in raw units and the normalisation, against sklearn's KernelDensity (BOOM's own call)."""
    from sklearn.neighbors import KernelDensity
    x = np.random.default_rng(5).normal(3.0, 2.0, 1500)
    assert splits.scott_bandwidth(1500) == pytest.approx(1500 ** -0.2, rel=1e-15)
    want = np.exp(KernelDensity(kernel="gaussian", bandwidth="scott").fit(x[:, None]).score_samples(x[:, None]))
    np.testing.assert_allclose(splits.kde_density(x), want, rtol=1e-10)
    assert splits.kde_density([]).shape == (0,)
    one = splits.kde_density([2.0])
    assert one.shape == (1,) and one[0] == pytest.approx(1 / np.sqrt(2 * np.pi))  # n = 1: h = 1, the kernel's peak


def test_kde_with_a_wide_explicit_bandwidth_matches_brute_force():
    """A bandwidth above 1 (the cutoff is 12 bandwidths, not 12 / bandwidth) on a wide, tied sample."""
    x = np.round(np.random.default_rng(6).normal(0, 300, 3000))
    h = 5.0
    brute = np.exp(-0.5 * ((x[:, None] - x[None, :]) / h) ** 2).sum(1) / (x.size * h * np.sqrt(2 * np.pi))
    np.testing.assert_allclose(splits.kde_density(x, bandwidth=h), brute, rtol=1e-11)


def test_direct_sums_up_to_the_pair_budget_taylor_beyond(monkeypatch):
    """The path choice: pairs within 12 bandwidths counted exactly, direct sums while pairs <= _DIRECT_PAIRS."""
    x = np.round(np.random.default_rng(7).normal(0, 3, 400), 1)
    h = splits.scott_bandwidth(x.size)
    u = np.unique(x)
    pairs = int((np.abs(u[:, None] - u[None, :]) <= 12 * h).sum())
    used = []
    real_direct, real_taylor = splits._direct_sums, splits._taylor_sums
    monkeypatch.setattr(splits, "_direct_sums", lambda *a: used.append("direct") or real_direct(*a))
    monkeypatch.setattr(splits, "_taylor_sums", lambda *a: used.append("taylor") or real_taylor(*a))
    for budget, path in ((pairs, "direct"), (pairs - 1, "taylor")):
        monkeypatch.setattr(splits, "_DIRECT_PAIRS", budget)
        used.clear()
        splits.kde_density(x)
        assert used == [path], (budget, pairs, used)


def test_split_digest_is_sha256_of_sorted_lines():
    import hashlib
    want = hashlib.sha256(b"a,ood\nb,train\nc,id").hexdigest()
    assert splits.split_digest(["c", "a", "b"], ["id", "ood", "train"]) == want


def test_boundary_ties_and_lowest_k_on_a_hand_made_density():
    d = np.array([0.5, 0.1, 0.3, 0.3, 0.3, 0.9, 0.7])
    assert splits.lowest_k(d, 2).tolist() == [1, 2]  # the tie at 0.3 settled by molecule order
    assert splits.lowest_k(d, 3).tolist() == [1, 2, 3]
    assert splits.boundary_ties(d, 2) == 3 and splits.boundary_ties(d, 3) == 3  # 3 share it, 4 do not
    assert splits.boundary_ties(d, 1) == 0 and splits.boundary_ties(d, 5) == 0
    for bad in (0, 7, -1):
        with pytest.raises(ValueError, match=r"^cannot take -?\d+ OOD molecules out of 7$"):
            splits.lowest_k(d, bad)
    assert splits.lowest_k(d, 5).tolist() == [1, 2, 3, 4, 0]
    mask, dens = splits.ood_mask([0.0, 0.1, 0.2, 5.0], 1)
    assert mask.tolist() == [False, False, False, True] and dens.shape == (4,)


def test_portable_key_rounds_to_36_bits_only():
    d = np.array([1.0, 1.0 + 2.0 ** -40, 1.0 + 2.0 ** -30, 3.5e-7])
    key = splits.portable_key(d)
    assert key[0] == key[1], "a difference below 36 bits is not an ordering"
    assert key[2] > key[0] and key[3] == pytest.approx(3.5e-7, rel=2.0 ** -35)


def test_shared_stream_draws_once_per_molecule_and_property_when_not_ood():
    """10k_csd: one Random(42) stream, molecules in file order, properties in the given order per molecule."""
    import random
    rng = np.random.default_rng(8)
    ood = {"density": rng.random(400) < 0.2, "hof": rng.random(400) < 0.2}
    got = splits.assign_shared_stream(ood, order=["density", "hof"])
    r = random.Random(42)
    want = {"density": [], "hof": []}
    for i in range(400):
        for p in ("density", "hof"):
            want[p].append("ood" if ood[p][i] else ("id" if r.random() < 0.05 else "train"))
    assert {p: got[p].tolist() for p in got} == want
    swapped = splits.assign_shared_stream(ood, order=["hof", "density"])
    assert swapped["density"].tolist() != want["density"], "the property order is part of the stream"

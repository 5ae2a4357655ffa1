"""The leaderboard keyed by configuration, from fabricated run folders on the real 10k labels (no training).

Each fabricated run holds what the orchestrator leaves: predictions.csv, scores.json (scored by boom.scoring)
and record.json.  Errors are chosen so every number on the board is known by hand.
"""
from __future__ import annotations

import csv
import gzip
import math
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pytest

from boom_schema import ModelReport, RunRecord, RunStatus, Scores
from boom_schema.predictions import write_predictions

N = 80  # --subset of every run here: 80 train, 20 ID, 20 OOD molecules
RF = {"n_estimators": 500, "max_features": "sqrt", "min_samples_leaf": 1}  # models/rf/model.yaml defaults


@pytest.fixture(scope="module")
def labels(boom_env):
    from boom import evidence
    from boom.data.prepare import prepare

    prepare("10k_csd")
    return {p: evidence.task_labels(p, N) for p in ("density", "hof")}


def signs(n: int, scale: float) -> np.ndarray:
    """Errors of constant size ``scale`` and alternating sign: RMSE = MAE = scale on any subset of molecules."""
    return scale * np.where(np.arange(n) % 2 == 0, 1.0, -1.0)


def fabricate(root: Path, labels, prop: str, seed: int, errors: Optional[Callable[[int], np.ndarray]],
              params: dict, finished: str, *, model: str = "rf", reason: str = "", std: Optional[float] = None,
              model_sha256: Optional[str] = "current", smoke: bool = False, pretrained: Optional[str] = None,
              old_scores: bool = False, split_sha256: Optional[str] = "task") -> Path:
    """One run folder; ``errors(n)`` gives y_pred - y_true in label order (None: a failed run)."""
    from boom import registry
    from boom.hashing import sha256_json
    from boom.scoring import split_scores

    task = labels[prop]
    lab = task.labels
    rid = sha256_json([model, prop, seed, params, finished, reason])[:16]
    folder = root / "10k_csd" / prop / model / rid
    folder.mkdir(parents=True)
    if model_sha256 == "current":
        model_sha256 = registry.get(model).content_hash()
    status = RunStatus.OK if errors is not None else RunStatus.FAILED
    if errors is not None:
        err = errors(len(lab))
        pred = lab["y"].to_numpy() + err
        order = np.random.default_rng(seed).permutation(len(lab))  # file order is not label order
        sd = None if std is None else [std] * len(lab)
        write_predictions(folder / "predictions.csv", lab["mol_id"].to_numpy()[order], pred[order],
                          None if sd is None else np.array(sd)[order])
        parts = {}
        for split in ("id", "ood"):
            m = (lab["split"] == split).to_numpy()
            parts[split] = split_scores(lab["y"].to_numpy()[m], pred[m], None if sd is None else np.array(sd)[m])
            if old_scores:  # scores.json written before the intervals existed
                parts[split] = parts[split].model_copy(update={k: None for k in (
                    "rmse_ci_lo", "rmse_ci_hi", "mae_ci_lo", "mae_ci_hi", "bootstrap")})
        scores = Scores(run_id=rid, model=model, dataset="10k_csd", property=prop, unit="x", seed=seed,
                        split_sha256=task.split_sha256, id=parts["id"], ood=parts["ood"],
                        ood_id_rmse_ratio=parts["ood"].rmse / parts["id"].rmse)
        (folder / "scores.json").write_text(scores.model_dump_json(indent=2))
    record = RunRecord(run_id=rid, model=model, dataset="10k_csd", property=prop, seed=seed, status=status,
                       reason=reason or None, runner="local", device="cpu", hyperparameters=params, subset=f"n{N}",
                       smoke=smoke, model_sha256=model_sha256, started_at=finished, finished_at=finished, wall_s=1.0,
                       split_sha256=task.split_sha256 if split_sha256 == "task" else split_sha256,
                       model_report=ModelReport(pretrained=pretrained))
    (folder / "record.json").write_text(record.model_dump_json(indent=2))
    return folder


@pytest.fixture(scope="module")
def board(labels, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("results")
    f = lambda *a, **k: fabricate(root, labels, *a, **k)  # noqa: E731
    # rf defaults: seed 0 |err| 1, seed 1 |err| 3 (an older seed-1 run with |err| 10 does not count), and a newer
    # failure of seed 0 that must not displace its successful run
    f("density", 0, lambda n: signs(n, 1.0), RF, "2026-01-01T10:00:00+00:00")
    f("density", 1, lambda n: signs(n, 10.0), RF, "2026-01-01T09:00:00+00:00")
    f("density", 1, lambda n: signs(n, 3.0), RF, "2026-01-01T11:00:00+00:00")
    f("density", 0, None, RF, "2026-01-02T10:00:00+00:00", reason="killed")
    # another configuration of the same model: a row of its own, never a third seed
    f("density", 0, lambda n: signs(n, 2.0), {**RF, "n_estimators": 3}, "2026-01-01T12:00:00+00:00")
    # a failed --set run: its own row, with its reason
    f("density", 0, None, {**RF, "max_features": "foo"}, "2026-01-01T13:00:00+00:00", reason="bad max_features")
    # the smoke configuration, and the defaults on an older model folder
    f("density", 0, lambda n: signs(n, 4.0), {**RF, "n_estimators": 20}, "2026-01-01T14:00:00+00:00", smoke=True)
    f("density", 0, lambda n: signs(n, 5.0), RF, "2026-01-01T15:00:00+00:00", model_sha256="0" * 64)
    # hof: a random-error row, its mirror (same |error| per molecule: tied), a clearly worse one (not tied),
    # and an old run whose scores.json has no intervals, with y_std
    e = np.random.default_rng(7).normal(size=len(labels["hof"].labels))
    f("hof", 0, lambda n: e, RF, "2026-01-01T10:00:00+00:00")
    f("hof", 0, lambda n: -e, {**RF, "n_estimators": 100}, "2026-01-01T10:00:00+00:00", pretrained="rxnfp-bert")
    f("hof", 0, lambda n: 3 * e + 2.0, {**RF, "n_estimators": 7}, "2026-01-01T10:00:00+00:00")
    f("hof", 0, lambda n: 2 * e, {**RF, "n_estimators": 8}, "2026-01-01T10:00:00+00:00", std=1.5, old_scores=True)
    return root


def _rows(root: Path, prop: str) -> dict[str, dict]:
    from boom import report

    frame = report.leaderboard_frame(root)
    assert list(frame.columns) == report.COLUMNS
    return {r["config"]: r for r in frame[frame["property"] == prop].to_dict("records")}


def test_rows_are_configurations_and_seeds_are_newest_ok(board: Path) -> None:
    rows = _rows(board, "density")
    assert set(rows) == {"defaults · n80", "n_estimators=3 · n80", 'max_features="foo" · n80', "smoke · n80",
                         "defaults · n80 · model folder 0000000"}
    d = rows["defaults · n80"]
    assert (d["seeds"], d["failed"], d["model"]) == (2, 0, "rf")  # the newer seed-0 failure displaced nothing
    assert d["ood_rmse"] == pytest.approx(2.0) and d["id_rmse"] == pytest.approx(2.0)  # mean of 1 and 3
    assert d["ood_rmse_sd"] == pytest.approx(math.sqrt(2.0))  # sample sd of 1 and 3
    # every resample: (1 + 3) / 2 = 2 -> a point interval; the MAE alike
    assert (d["ood_rmse_ci_lo"], d["ood_rmse_ci_hi"]) == pytest.approx((2.0, 2.0))
    assert (d["id_mae_ci_lo"], d["id_mae_ci_hi"]) == pytest.approx((2.0, 2.0))
    assert d["pretrained"] == "from scratch"
    assert not d["default"]  # a --subset run is not the default configuration
    three = rows["n_estimators=3 · n80"]
    assert three["seeds"] == 1 and three["ood_rmse"] == pytest.approx(2.0) and math.isnan(three["ood_rmse_sd"])
    foo = rows['max_features="foo" · n80']
    assert (foo["seeds"], foo["failed"]) == (0, 1) and "bad max_features" in foo["reason"]
    assert rows["smoke · n80"]["ood_rmse"] == pytest.approx(4.0)
    assert rows["defaults · n80 · model folder 0000000"]["ood_rmse"] == pytest.approx(5.0)
    # rf ties with itself at 2.0 (defaults, n_estimators=3): best and tied; the others are worse on every molecule
    assert d["tied_best"] and three["tied_best"] and d["best"] != three["best"]
    assert rows["smoke · n80"]["tied_best"] is False


def test_runs_frame_has_every_run_and_marks_the_counted_ones(board: Path) -> None:
    from boom import report

    runs = report.runs_frame(board)
    dens = runs[runs["property"] == "density"]
    assert len(dens) == 8 and set(report.RUN_COLUMNS) <= set(runs.columns)
    defaults = dens[dens["config"] == "defaults · n80"].set_index(["seed", "finished_at"])
    assert bool(defaults.loc[(0, "2026-01-01T10:00:00+00:00"), "counted"])
    assert not bool(defaults.loc[(0, "2026-01-02T10:00:00+00:00"), "counted"])  # the failure after the ok run
    assert not bool(defaults.loc[(1, "2026-01-01T09:00:00+00:00"), "counted"])  # the older seed-1 run
    assert defaults.loc[(1, "2026-01-01T11:00:00+00:00"), "ood_rmse"] == pytest.approx(3.0)
    assert (dens["config_id"].nunique(), dens["hyperparameters"].str.contains("n_estimators").all()) == (5, True)


def test_tied_with_best_uses_the_paired_difference(board: Path) -> None:
    rows = _rows(board, "hof")
    best, mirror = rows["defaults · n80"], rows["n_estimators=100 · n80"]
    worse, old = rows["n_estimators=7 · n80"], rows["n_estimators=8 · n80"]
    assert best["ood_rmse"] == pytest.approx(mirror["ood_rmse"])
    assert best["tied_best"] and mirror["tied_best"] and best["best"] != mirror["best"]  # one of them is the best
    assert (mirror["ood_rmse_diff_lo"], mirror["ood_rmse_diff_hi"]) == pytest.approx((0.0, 0.0))
    assert worse["tied_best"] is False and worse["ood_rmse_diff_lo"] > 0
    # 2e: RMSE(2e) - RMSE(e) = RMSE(e) on every resample -> the difference's interval is the best's own interval
    assert old["tied_best"] is False
    assert (old["ood_rmse_diff_lo"], old["ood_rmse_diff_hi"]) == pytest.approx(
        (best["ood_rmse_ci_lo"], best["ood_rmse_ci_hi"]))
    assert mirror["pretrained"] == "rxnfp-bert" and best["pretrained"] == "from scratch"


def test_old_runs_get_intervals_and_uncertainty_from_their_predictions(board: Path, labels) -> None:
    from boom import uncertainty
    from boom.scoring import split_scores

    old = _rows(board, "hof")["n_estimators=8 · n80"]
    lab = labels["hof"].labels
    e = 2 * np.random.default_rng(7).normal(size=len(lab))
    m = (lab["split"] == "ood").to_numpy()
    y = lab["y"].to_numpy()[m]
    fresh = split_scores(y, y + e[m])  # what a run scored today writes into scores.json
    assert (old["ood_rmse_ci_lo"], old["ood_rmse_ci_hi"]) == pytest.approx((fresh.rmse_ci_lo, fresh.rmse_ci_hi))
    assert (old["ood_mae_ci_lo"], old["ood_mae_ci_hi"]) == pytest.approx((fresh.mae_ci_lo, fresh.mae_ci_hi))
    u = uncertainty.scores(y, y + e[m], np.full(m.sum(), 1.5))
    assert old["ood_nll"] == pytest.approx(u["nll"]) and old["ood_coverage_95"] == pytest.approx(u["coverage_95"])
    assert old["ood_miscalibration_area"] == pytest.approx(u["miscalibration_area"])
    assert math.isnan(_rows(board, "hof")["defaults · n80"]["ood_nll"])  # no y_std, no NLL


def test_default_and_smoke_configurations_are_marked(labels, tmp_path: Path) -> None:
    from boom import report

    fabricate(tmp_path, labels, "density", 0, lambda n: signs(n, 1.0), RF, "2026-01-01T10:00:00+00:00")
    (row,) = report.collect(tmp_path)
    key = row.config
    full = report.ConfigKey(**{**key.__dict__, "subset": None})
    assert report.is_default(full) and not report.is_default(key)
    assert not report.is_default(report.ConfigKey(**{**full.__dict__, "smoke": True}))
    assert not report.is_default(report.ConfigKey(**{**full.__dict__, "model_sha256": "0" * 64}))
    assert report.config_short(full) == "defaults"
    assert report.config_short(report.ConfigKey(**{**full.__dict__, "device": "cuda"})) == "defaults · cuda"
    # rf's smoke values without --smoke are an override; a record older than the 'smoke' field is read by its values
    smoke_params = {**RF, "n_estimators": 20}
    record = RunRecord.model_validate_json((row.ok[0].folder / "record.json").read_text())
    recorded = record.model_copy(update={"hyperparameters": smoke_params, "smoke": False})
    assert report.config_short(report.config_of(recorded)) == "n_estimators=20 · n80"
    old = RunRecord.model_validate({k: v for k, v in recorded.model_dump().items() if k != "smoke"})
    assert report.config_short(report.config_of(old)) == "smoke · n80"


def test_export_is_self_contained_and_regenerates_the_same_table(board: Path, tmp_path: Path) -> None:
    from boom import report

    out = tmp_path / "leaderboard"
    md, written = report.write(out, root=board)
    names = {p.name for p in written}
    assert {"leaderboard.csv", "leaderboard.md", "leaderboard.html", report.HEATMAP,
            "extrapolation_density_n80.png", "extrapolation_hof_n80.png"} <= names
    gz = sorted((out / "runs").rglob("predictions.csv.gz"))
    assert len(gz) == 9  # the counted ok runs: 5 on density (the defaults' 2 seeds), 4 on hof
    for path in gz:
        original = board / path.relative_to(out / "runs").parent / "predictions.csv"
        assert gzip.decompress(path.read_bytes()) == original.read_bytes()
    assert len(list((out / "runs").rglob("record.json"))) == 10  # and the failed --set run's record
    page = (out / "leaderboard.html").read_text()
    assert "project commit" in page and "<script>" in page and 'title="{' in page
    for link in [part.split('"')[0] for part in page.split('src="')[1:]]:
        assert (out / link).is_file(), link
    table = (out / "leaderboard.csv").read_text()
    one_seed = [r for r in csv.DictReader(table.splitlines()) if r["config"] == "n_estimators=3 · n80"]
    assert one_seed[0]["ood_rmse_sd"] == "" and one_seed[0]["seeds"] == "1"  # sd of one seed is blank
    # a second export replaces the runs folder and writes the same table; so does reading the export back
    report.write(out, root=board)
    assert (out / "leaderboard.csv").read_text() == table
    again = tmp_path / "again"
    report.write(again, root=out / "runs")
    strip = lambda text: [{k: v for k, v in r.items() if k != "newest"} for r in csv.DictReader(text.splitlines())]  # noqa: E731
    assert strip((again / "leaderboard.csv").read_text()) == strip(table)
    with pytest.raises(ValueError, match="which the export replaces; export to another --out folder"):
        report.write(out, root=out / "runs")  # would delete the runs it reads
    assert len(list((out / "runs").rglob("predictions.csv.gz"))) == 9


def test_export_refuses_a_foreign_runs_folder(board: Path, tmp_path: Path) -> None:
    from boom import report

    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "mine.txt").write_text("not the report's")
    with pytest.raises(ValueError, match="was not written by 'boom report'; choose another --out"):
        report.write(tmp_path, root=board)
    assert (tmp_path / "runs" / "mine.txt").exists()


def test_extrapolation_bins_by_hand() -> None:
    from boom import evidence

    # train range [0, 10]; distances outside it 0, 1, 2, 3, 4, 1
    bins = evidence.extrapolation_bins([5.0, 11.0, 12.0, 13.0, 14.0, -1.0], [0.0, 10.0, 3.0], n_bins=2)
    # quantiles of the outside distances [1, 2, 3, 4, 1] at 0, 1/2, 1: 1, 2, 4 -> bins [1, 2] and (2, 4]
    assert bins.labels == ["inside", "1–2", "2–4"]
    assert bins.index.tolist() == [0, 1, 1, 2, 2, 1] and bins.counts == [1, 3, 2]
    assert bins.train_range == (0.0, 10.0)
    err = np.array([[1.0, -2.0, 2.0, 3.0, -5.0, 2.0], [1.0, 0.0, 0.0, 1.0, 1.0, 0.0]])
    # inside: |1|, |1| -> 1; bin 1: 2, 2, 2, 0, 0, 0 -> 1; bin 2: 3, 5, 1, 1 -> 2.5
    assert evidence.binned_abs_error(err, bins).tolist() == pytest.approx([1.0, 1.0, 2.5])
    inside = evidence.extrapolation_bins([1.0, 2.0], [0.0, 10.0])
    assert inside.labels == ["inside"] and inside.counts == [2]


def test_readme_block_is_filled_between_its_markers(board: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from boom.cli import main

    readme = tmp_path / "README.md"
    readme.write_text("# title\n\n<!-- results:begin -->\nold table\n<!-- results:end -->\n\n## after\n")
    out = tmp_path / "leaderboard"
    result = CliRunner().invoke(main, ["--results-dir", str(board), "report", "--out", str(out), "--readme", str(readme)])
    assert result.exit_code == 0, result.output
    text = readme.read_text()
    assert text.startswith("# title\n\n<!-- results:begin -->\n") and text.endswith("<!-- results:end -->\n\n## after\n")
    assert "old table" not in text and "[leaderboard/leaderboard.md](leaderboard/leaderboard.md)" in text
    lines = {tuple(c.strip() for c in l.split("|")[1:4]): l for l in text.splitlines() if l.startswith("| rf |")}
    # density: two rows at 2.0 (one and two seeds), one of them the best (bold), the other tied with it (italics)
    three = lines[("rf", "n_estimators=3 · n80", "from scratch")].split("|")[4].strip()
    both = lines[("rf", "defaults · n80", "from scratch")].split("|")[4].strip()
    assert {three, both} in ({"**2**", "*2* (2 seeds)"}, {"*2*", "**2** (2 seeds)"})
    assert "| 4 |" in lines[("rf", "smoke · n80", "from scratch")]  # neither
    assert ("rf", 'max_features="foo" · n80', "from scratch") not in lines  # no successful seed, no README row
    # a README without its markers: one line, nothing written
    bad = tmp_path / "BAD.md"
    bad.write_text("# no markers\n")
    result = CliRunner().invoke(main, ["--results-dir", str(board), "report", "--out", str(tmp_path / "x"),
                                       "--readme", str(bad)])
    assert result.exit_code == 1 and "needs one '<!-- results:begin -->' line" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "x").exists()


def test_an_ok_record_without_scores_counts_as_failed_with_the_reason(labels, tmp_path: Path) -> None:
    from boom import report

    folder = fabricate(tmp_path, labels, "density", 0, lambda n: signs(n, 1.0), RF, "2026-01-01T10:00:00+00:00")
    (folder / "scores.json").write_text("{not json")
    (row,) = report.table(report.collect(tmp_path))
    assert (row["seeds"], row["failed"]) == (0, 1)
    assert row["reason"] == f"ok, but {folder / 'scores.json'} is missing or invalid (rerun with --force)"


def test_compare_two_runs_paired_by_mol_id(labels, tmp_path: Path) -> None:
    from boom import evidence, intervals

    e = np.random.default_rng(3).normal(size=len(labels["density"].labels))
    a = fabricate(tmp_path, labels, "density", 0, lambda n: e, RF, "2026-01-01T10:00:00+00:00")
    b = fabricate(tmp_path, labels, "density", 1, lambda n: 2 * e, RF, "2026-01-01T10:00:00+00:00")
    ood = (labels["density"].labels["split"] == "ood").to_numpy()
    # the files list molecules in different orders (seeded per run); matched by mol_id, 2e - e = e on every resample
    d, lo, hi = evidence.compare_runs(b, a)
    assert d == pytest.approx(intervals.point(e[ood])) and (lo, hi) == pytest.approx(intervals.interval(e[ood]))
    other = fabricate(tmp_path, labels, "hof", 0, lambda n: signs(n, 1.0), RF, "2026-01-01T10:00:00+00:00")
    with pytest.raises(ValueError, match="not the same task: density \\(n80\\) vs hof \\(n80\\)"):
        evidence.compare_runs(a, other)


def test_a_slurm_failure_record_without_digests_joins_its_configuration(labels, tmp_path: Path) -> None:
    from boom import report

    fabricate(tmp_path, labels, "density", 0, lambda n: signs(n, 1.0), RF, "2026-01-01T10:00:00+00:00")
    # what slurm.watch.write_failure leaves for a cell Slurm timed out: no model-folder or split digest
    fabricate(tmp_path, labels, "density", 1, None, RF, "2026-01-01T11:00:00+00:00", reason="TIMEOUT",
              model_sha256=None, split_sha256=None)
    # a failure of other settings stays a row of its own
    fabricate(tmp_path, labels, "density", 1, None, {**RF, "n_estimators": 9}, "2026-01-01T11:00:00+00:00",
              reason="TIMEOUT", model_sha256=None, split_sha256=None)
    rows = {r["config"]: r for r in report.table(report.collect(tmp_path))}
    assert set(rows) == {"defaults · n80", "n_estimators=9 · n80"}
    assert (rows["defaults · n80"]["seeds"], rows["defaults · n80"]["failed"]) == (1, 1)
    assert "TIMEOUT" in rows["defaults · n80"]["reason"]
    runs = report.runs_frame(tmp_path)
    assert runs["counted"].all() and runs["config_id"].nunique() == 2


def test_row_order_newest_counts_and_r2_are_the_rows_own(board: Path) -> None:
    """Rows per task by mean OOD RMSE (ties by model and configuration; rows without a successful seed last), the
    newest counted run's time, the split sizes of the subset, and R² as the mean of the counted seeds' R²."""
    from boom import report

    frame = report.leaderboard_frame(board)
    dens = frame[frame["property"] == "density"]
    assert list(dens["config"]) == ["defaults · n80", "n_estimators=3 · n80", "smoke · n80",
                                    "defaults · n80 · model folder 0000000", 'max_features="foo" · n80']
    assert list(frame["property"].drop_duplicates()) == ["density", "hof"]
    by = {r["config"]: r for r in dens.to_dict("records")}
    assert by["defaults · n80"]["newest"] == "2026-01-01T11:00:00+00:00"  # the counted seed-1 run; not the failure
    assert by['max_features="foo" · n80']["newest"] == "2026-01-01T13:00:00+00:00"
    assert (by["defaults · n80"]["n_id"], by["defaults · n80"]["n_ood"]) == (N // 4, N // 4)
    assert math.isnan(by['max_features="foo" · n80']["n_id"])
    rows = {r.config.config_id: r for r in report.collect(board) if r.property == "density"}
    for r in rows.values():
        d = next(x for x in dens.to_dict("records") if x["config_id"] == r.config.config_id)
        if r.ok:
            assert d["id_r2"] == pytest.approx(np.mean([x.scores.id.r2 for x in r.ok]))
            assert d["ood_r2"] == pytest.approx(np.mean([x.scores.ood.r2 for x in r.ok]))
        else:
            assert math.isnan(d["id_r2"]) and math.isnan(d["ood_r2"])

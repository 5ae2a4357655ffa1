"""What `boom report` prints, pinned by hand: the CSV and runs-frame columns, the Markdown and README tables, the
number formats, the subset labels, the commit stamp.  Hand-made row dicts only (no runs, no data): unit tests.

These formats are what people and scripts read (leaderboard.csv columns, README block); a change to them should be
a decision that updates this file, never an accident."""
from __future__ import annotations

import math
import re
import subprocess
from pathlib import Path

import pytest

from boom import report

REPO = Path(__file__).resolve().parents[1]

CSV_COLUMNS = [
    "dataset", "property", "unit", "model", "config", "default", "pretrained", "subset", "device", "seeds", "failed",
    "id_rmse", "id_rmse_sd", "id_rmse_ci_lo", "id_rmse_ci_hi", "ood_rmse", "ood_rmse_sd", "ood_rmse_ci_lo",
    "ood_rmse_ci_hi", "tied_best", "best", "ood_rmse_diff_lo", "ood_rmse_diff_hi", "id_mae", "id_mae_ci_lo",
    "id_mae_ci_hi", "ood_mae", "ood_mae_ci_lo", "ood_mae_ci_hi", "id_r2", "ood_r2", "ood_id_ratio", "ood_nll",
    "ood_coverage_68", "ood_coverage_95", "ood_miscalibration_area", "ood_spearman_abs_err_std", "n_id", "n_ood",
    "config_id", "config_full", "newest", "reason"]
RUN_METRICS = ["n", "rmse", "rmse_ci_lo", "rmse_ci_hi", "mae", "mae_ci_lo", "mae_ci_hi", "r2", "spearman", "max_error",
               "mean_y_std", "nll", "coverage_68", "coverage_95", "miscalibration_area", "spearman_abs_err_std"]
RUN_FRAME = (["run_id", "dataset", "property", "model", "seed", "status", "reason", "counted", "config", "config_id",
              "default", "pretrained", "hyperparameters", "smoke", "subset", "device", "model_sha256", "split_sha256",
              "runner", "started_at", "finished_at", "wall_s", "peak_memory_mb", "n_parameters"]
             + [f"{s}_{m}" for s in ("id", "ood") for m in RUN_METRICS] + ["ood_id_ratio", "folder"])


def row(**kw) -> dict:
    base = {c: math.nan for c in CSV_COLUMNS}
    base.update(dataset="10k_csd", property="density", unit="g/cm^3", model="rf", config="defaults", default=True,
                pretrained="from scratch", subset="full", device="cpu", seeds=3, failed=0, reason="",
                tied_best=False, best=False)
    base.update(kw)
    return base


def test_csv_and_runs_frame_columns_are_the_documented_ones() -> None:
    assert report.COLUMNS == CSV_COLUMNS
    assert report.RUN_COLUMNS[:-2] + [f"{s}_{m}" for s in ("id", "ood") for m in report._RUN_METRICS] \
        + report.RUN_COLUMNS[-2:] == RUN_FRAME
    assert list(report.runs_frame(Path("/nonexistent/results")).columns) == RUN_FRAME


def test_csv_file_header_and_plain_values(tmp_path: Path) -> None:
    path = report.write_csv(tmp_path / "lb.csv", [row(ood_rmse=0.5, id_rmse=math.inf)], CSV_COLUMNS)
    header, line = path.read_text().splitlines()
    assert header == ",".join(CSV_COLUMNS)
    values = dict(zip(CSV_COLUMNS, line.split(",")))
    assert (values["ood_rmse"], values["model"], values["default"], values["id_rmse_sd"]) == ("0.5", "rf", "True", "")


def test_number_formats() -> None:
    assert report._fmt(None) == "—" and report._fmt(math.nan) == "—"
    assert report._fmt(math.inf) == "∞" and report._fmt(-math.inf) == "−∞"
    assert report._fmt(0.046044857) == "0.04604" and report._fmt(138.61980) == "138.6"
    assert report._fmt(2.0, 1.41421) == "2 ± 1.4" and report._fmt(2.0, math.nan) == "2"
    assert report._ci(row(ood_rmse_ci_lo=0.0437512, ood_rmse_ci_hi=0.048373), "ood_rmse") == "[0.04375, 0.04837]"
    assert report._ci(row(ood_rmse_ci_lo=0.1), "ood_rmse") == ""
    assert [report._tie(row(tied_best=t, best=b)) for t, b in ((True, True), (True, False), (False, False))] == \
        ["best", "tied", "no"]
    assert report._tie(row(tied_best=None)) == "—"
    assert report._num(0.25) == '<td data-v="0.25">0.25</td>'
    assert report._num(math.inf) == '<td data-v="Infinity">∞</td>'
    assert report._num(None) == '<td data-v="">—</td>'
    assert report._num(1.5, 0.25) == '<td data-v="1.5">1.5 ± 0.25</td>'


def test_subset_labels() -> None:
    assert report.subset_parts("n80-train2000") == (80, 2000)
    assert report.subset_parts("train2000") == (None, 2000)
    assert report.subset_parts("n80") == (80, None)
    assert report.subset_parts(None) == (None, None) and report.subset_parts("") == (None, None)
    assert report.subset_parts("trainX-nY") == (None, None)


def test_markdown_table_rows() -> None:
    rows = [row(model="mlp", id_rmse=0.0084053, id_rmse_sd=0.00020182, ood_rmse=0.046044857, ood_rmse_sd=0.002525,
                ood_rmse_ci_lo=0.043751, ood_rmse_ci_hi=0.048373, tied_best=True, best=True, ood_id_ratio=5.4781,
                ood_r2=0.61234),
            row(config="n_estimators=3", default=False, seeds=1, failed=2, reason="x" * 100, ood_rmse=0.2)]
    lines = report.markdown(rows).split("\n")
    assert lines[0] == ("| property | model | config | pretrained | seeds | ID RMSE | OOD RMSE | OOD 95% CI | "
                        "tied with best | OOD/ID | OOD R² | failures |")
    assert lines[1] == "|---|---|---|---|---|---|---|---|---|---|---|---|"
    assert lines[2] == ("| density (g/cm^3) | mlp | defaults ★ | from scratch | 3 | 0.008405 ± 0.0002 | "
                        "0.04604 ± 0.0025 | [0.04375, 0.04837] | best | 5.478 | 0.6123 | 0 |")
    assert lines[3] == (f"| density (g/cm^3) | rf | n_estimators=3 | from scratch | 1 | — | 0.2 |  | no | — | — | "
                        f"2 ({'x' * 80}) |")
    assert lines[4:] == [""], "one row per line and a final newline"


def test_readme_table() -> None:
    rows = [row(model="mlp", ood_rmse=0.046044857, best=True, tied_best=True),
            row(model="rf", ood_rmse=0.17921, seeds=1),
            row(model="rf", config="n_estimators=3", default=False, ood_rmse=0.05, tied_best=True, seeds=2),
            row(model="mlp", property="hof", unit="kcal/mol", ood_rmse=22.07, best=True, tied_best=True),
            row(model="gnn", property="mu", unit="D", ood_rmse=1.0, seeds=0)]  # no successful seed: no column
    text = report.readme_table(rows, "leaderboard/leaderboard.md")
    lines = text.split("\n")
    assert lines[0].endswith("Intervals, ID metrics and failures: [leaderboard/leaderboard.md](leaderboard/leaderboard.md).")
    assert lines[1:] == [
        "",
        "| model | config | pretrained | density (g/cm^3) | hof (kcal/mol) |",
        "|---|---|---|---|---|",
        "| mlp | defaults ★ | from scratch | **0.04604** (3 seeds) | **22.07** (3 seeds) |",
        "| rf | defaults ★ | from scratch | 0.1792 |  |",
        "| rf | n_estimators=3 | from scratch | *0.05* (2 seeds) |  |",
        ""]


def test_readme_markers_are_required_once_and_in_order(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    for text in ("no markers\n", f"{report.README_END}\n{report.README_BEGIN}\n",
                 f"{report.README_BEGIN}\n{report.README_BEGIN}\n{report.README_END}\n",
                 f"{report.README_BEGIN}\n"):
        readme.write_text(text)
        with pytest.raises(ValueError, match="needs one"):
            report.fill_readme(readme, [row(ood_rmse=1.0)], tmp_path / "lb.md")
    with pytest.raises(ValueError) as err:
        report.fill_readme(tmp_path / "missing.md", [], tmp_path / "lb.md")
    assert str(err.value) == f"{tmp_path / 'missing.md'}: cannot read the README (No such file or directory)"
    readme.write_text(f"top\n{report.README_BEGIN}\nOLDBLOCK\n{report.README_END}\nbottom\n")
    report.fill_readme(readme, [row(ood_rmse=1.0)], tmp_path / "lb" / "lb.md")
    text = readme.read_text()
    assert text.startswith(f"top\n{report.README_BEGIN}\nOOD RMSE per task") and text.endswith(f"{report.README_END}\nbottom\n")
    assert "OLDBLOCK" not in text and "[lb/lb.md](lb/lb.md)" in text


def test_commit_stamp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    sha = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                         text=True).stdout.strip()
    stamp = report.project_commit()
    if sha:  # a git checkout (CI, a clone): the short commit, '+dirty' exactly when tracked files changed
        dirty = bool(subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                                    capture_output=True, text=True).stdout.strip())
        assert stamp == sha + ("+dirty" if dirty else "")
    monkeypatch.setattr(report.paths, "repo_root", lambda: tmp_path)  # not a checkout
    assert report.project_commit() == "unknown"
    assert re.fullmatch(r"[0-9a-f]{12}(\+dirty)?|unknown", stamp)


def test_extrapolation_figure_names() -> None:
    from types import SimpleNamespace

    assert report.extrapolation_name(SimpleNamespace(property="hof", test_set=None)) == "extrapolation_hof.png"
    assert report.extrapolation_name(SimpleNamespace(property="mu", test_set="t50")) == "extrapolation_mu_t50.png"

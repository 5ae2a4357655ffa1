"""What `boom report` prints, pinned by hand: the CSV and runs-frame columns, the Markdown and README tables, the
number formats, the subset labels, the commit stamp.  Hand-made row dicts only (no runs, no data): unit tests.

These formats are what people and scripts read (leaderboard.csv columns, README block); a change to them should be
a decision that updates this file, never an accident."""
from __future__ import annotations

import json
import math
import os
import re
import subprocess
from pathlib import Path
from typing import Optional

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


def test_the_committed_export_is_one_boom_report_may_replace() -> None:
    """leaderboard/runs carries the export marker under today's name, so `boom report --out leaderboard`
    regenerates the results of record in place instead of refusing the folder as foreign."""
    assert (REPO / "leaderboard" / report.RUNS_DIR / report._EXPORT_MARK).is_file()


def test_extrapolation_figure_names() -> None:
    from types import SimpleNamespace

    assert report.extrapolation_name(SimpleNamespace(property="hof", test_set=None)) == "extrapolation_hof.png"
    assert report.extrapolation_name(SimpleNamespace(property="mu", test_set="t50")) == "extrapolation_mu_t50.png"


def test_html_rows_by_hand() -> None:
    best = row(model="mlp<b>", id_rmse=0.0084053, id_rmse_sd=0.00020182, ood_rmse=0.046044857, ood_rmse_sd=0.002525,
               ood_rmse_ci_lo=0.043751, ood_rmse_ci_hi=0.048373, tied_best=True, best=True, ood_rmse_diff_lo=-0.0012345,
               ood_rmse_diff_hi=0.00234567, ood_id_ratio=5.4781, id_mae=0.006, ood_mae=0.03, id_r2=0.9, ood_r2=0.61234,
               ood_nll=-1.5, ood_coverage_95=0.93, newest="2026-12-01T10:00:00", config_full='{"a": 1}')
    assert report._html_row(best, [(0, "runs/a/parity.png"), (1, "runs/b/parity.png")]) == (
        '<tr class="ok"><td class="l">mlp&lt;b&gt;</td><td class="l config" title="{&quot;a&quot;: 1}">defaults ★</td>'
        '<td class="l">from scratch</td><td data-v="3">3</td><td data-v="0.0084053">0.008405 ± 0.0002</td>'
        '<td data-v="0.046044857">0.04604 ± 0.0025</td><td data-v="0.043751">[0.04375, 0.04837]</td>'
        '<td class="l tied" title="OOD RMSE − best: [-0.001234, 0.002346]">best</td><td data-v="5.4781">5.478</td>'
        '<td data-v="0.006">0.006</td><td data-v="0.03">0.03</td><td data-v="0.9">0.9</td>'
        '<td data-v="0.61234">0.6123</td><td data-v="-1.5">-1.5</td><td data-v="0.93">0.93</td>'
        '<td class="l">2026-12-01T10:00:00</td><td class="l">0</td><td class="l thumbs">'
        '<a href="runs/a/parity.png"><img class="thumb" src="runs/a/parity.png" alt="parity mlp&lt;b&gt; density seed 0">'
        '</a><a href="runs/b/parity.png"><img class="thumb" src="runs/b/parity.png" alt="parity mlp&lt;b&gt; density '
        'seed 1"></a></td></tr>')
    failed = row(config="n_estimators=3", default=False, seeds=0, failed=2, reason="y" * 200, config_full="{}",
                 newest="")
    line = report._html_row(failed, [])
    assert line.startswith('<tr class="fail"><td class="l">rf</td><td class="l config" title="{}">n_estimators=3</td>')
    assert f'<td class="l">2: {"y" * 160}</td><td class="l thumbs"></td></tr>' in line, "reason cut at 160"
    assert '<td data-v=""></td><td class="l">no</td>' in line, "no interval, not tied, no difference tooltip"


def test_html_sections_by_hand() -> None:
    assert report._html_notes_and_heatmap([], None) == []
    assert report._html_notes_and_heatmap(["a<1", "b"], "heat.png") == [
        '<ul id="notes"><li>a&lt;1</li><li>b</li></ul>',
        '<h2>OOD RMSE, normalised per task</h2><img id="heatmap" src="heat.png" '
        'alt="configuration x task heatmap of OOD RMSE normalised per task">']
    section = report._html_task(("qm9", "mu", "n80"), ["<tr>1</tr>", "<tr>2</tr>"], "extrapolation_mu_n80.png")
    assert section == [
        '<h2 id="task-mu-n80">mu (qm9, test subset n80), D</h2>', report._HTML_HEADER, "<tr>1</tr>", "<tr>2</tr>",
        "</tbody></table>",
        '<img class="fig extrapolation" src="extrapolation_mu_n80.png" '
        'alt="OOD error by distance outside the training range, mu (qm9, test subset n80)">']
    assert report._html_task(("10k_csd", "hof", None), [], None) == [
        '<h2 id="task-hof">hof (10k_csd), kcal/mol</h2>', report._HTML_HEADER, "</tbody></table>"]
    headers = re.findall(r"<th>(.*?)</th>", report._HTML_HEADER)
    assert headers == ["model", "config", "pretrained", "seeds", "ID RMSE", "OOD RMSE", "OOD 95% CI", "tied with best",
                       "OOD/ID", "ID MAE", "OOD MAE", "ID R²", "OOD R²", "OOD NLL", "OOD cov. 95%", "newest run",
                       "failures", "parity plots"]
    assert report._HTML_HEADER == ('<table class="leaderboard"><thead><tr>' + "".join(f"<th>{h}</th>" for h in headers)
                                   + "</tr></thead><tbody>")
    page = report.html_page([], Path("."), ["only note"], {}, {})
    lines = page.split("\n")
    assert lines[:3] == ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
                         "<title>BOOM-TTE leaderboard</title>"]
    assert '<ul id="notes"><li>only note</li></ul>' in lines and 'id="heatmap"' not in page
    meta = [line for line in lines if 'id="meta"' in line]
    assert len(meta) == 1 and re.fullmatch(
        r'<p class="meta" id="meta">Generated \d{4}-\d\d-\d\d \d\d:\d\d UTC from project commit '
        r'<code>([0-9a-f]{12}(\+dirty)?|unknown)</code>\.</p>', meta[0]), meta
    assert lines[-3:] == ["</script>", "</body></html>", ""], "ends with the sort script and one newline"
    assert '<p id="empty">No runs yet: <code>boom run</code> or <code>boom matrix</code> first.</p>' in lines


# ---------------------------------------------------------------------------------------------------
# a hand-made results tree: rows, the runs frame, the heatmap grid, notes in leaderboard.md
# ---------------------------------------------------------------------------------------------------

RF_DEFAULTS = {"n_estimators": 500, "max_features": "sqrt", "min_samples_leaf": 1}  # models/rf/model.yaml


def _run(root: Path, rid: str, seed: int, finished: str, ood: Optional[float], subset: Optional[str] = None,
         hyper: Optional[dict] = None, **kw) -> Path:
    from boom import results
    from boom_schema import ModelReport, RunRecord, RunStatus, Scores, SplitScores

    folder = results.run_dir("10k_csd", "density", "rf", rid, root)
    folder.mkdir(parents=True)
    record = RunRecord(run_id=rid, model="rf", dataset="10k_csd", property="density", seed=seed,
                       status=RunStatus.OK if ood is not None else RunStatus.FAILED,
                       reason=None if ood is not None else "crashed: exit 1", runner="local", device="cpu",
                       hyperparameters=RF_DEFAULTS if hyper is None else hyper, subset=subset, smoke=False,
                       started_at="2026-01-01T00:00:00+00:00", finished_at=finished, wall_s=60.0,
                       model_report=ModelReport(pretrained=None), **kw)
    (folder / "record.json").write_text(record.model_dump_json())
    if ood is not None:
        split = lambda rmse, n: SplitScores(n=n, rmse=rmse, mae=rmse / 2, r2=0.5, max_error=2 * rmse)  # noqa: E731
        scores = Scores(run_id=rid, model="rf", dataset="10k_csd", property="density", unit="g/cm^3", seed=seed,
                        id=split(0.1, 4), ood=split(ood, 5), ood_id_rmse_ratio=ood / 0.1)
        (folder / "scores.json").write_text(scores.model_dump_json())
    return folder


@pytest.fixture()
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BOOM_DATA_DIR", str(tmp_path / "no-data"))  # no labels: the report notes it, never guesses
    root = tmp_path / "results"
    _run(root, "a0", 0, "2026-01-02T00:00:00+00:00", 0.2)
    _run(root, "a1", 1, "2026-01-02T00:00:00+00:00", 0.4, hyper=dict(reversed(list(RF_DEFAULTS.items()))))
    _run(root, "a2", 2, "2026-01-03T00:00:00+00:00", None)
    _run(root, "old", 0, "2026-01-01T00:00:00+00:00", 9.0)  # seed 0's older run: not counted
    _run(root, "n80", 0, "2026-01-02T00:00:00+00:00", 0.5, subset="n80")
    return root


def test_rows_of_a_hand_made_tree(tree: Path) -> None:
    rows = report.collect(tree, evidence=False)
    assert [(r.test_set, [x.record.run_id for x in r.ok], [x.record.run_id for x in r.failed]) for r in rows] == [
        (None, ["a0", "a1"], ["a2"]), ("n80", ["n80"], [])], "key order of hyperparameters is not a configuration"
    d = report.table(rows)[0]
    assert (d["dataset"], d["property"], d["unit"], d["model"], d["subset"], d["device"]) == (
        "10k_csd", "density", "g/cm^3", "rf", "full", "cpu")
    assert (d["config"], d["default"], d["pretrained"], d["seeds"], d["failed"]) == ("defaults", True, "from scratch", 2, 1)
    assert d["ood_rmse"] == pytest.approx(0.3) and d["ood_rmse_sd"] == pytest.approx(math.sqrt(0.02))
    assert (d["newest"], d["reason"]) == ("2026-01-03T00:00:00+00:00", "failed: crashed: exit 1")
    labels, tasks, grid, failed = report.heatmap_grid(rows)
    assert (labels, tasks, failed) == (["rf", "rf [defaults · n80]"], ["density", "density (n80)"], set())
    assert grid.tolist()[0][0] == pytest.approx(0.3) and grid.tolist()[1][1] == pytest.approx(0.5)
    assert math.isnan(grid[0, 1]) and math.isnan(grid[1, 0])


def test_runs_frame_of_a_hand_made_tree(tree: Path) -> None:
    frame = report.runs_frame(tree)
    assert list(frame["run_id"]) == ["old", "a0", "a1", "n80", "a2"]  # by task, model, then finished_at
    assert list(frame["counted"]) == [False, True, True, True, True]
    first = frame.iloc[1].to_dict()
    expect = {"run_id": "a0", "dataset": "10k_csd", "property": "density", "model": "rf", "seed": 0, "status": "ok",
              "reason": "", "counted": True, "config": "defaults", "default": True, "pretrained": "from scratch",
              "hyperparameters": json.dumps(RF_DEFAULTS, sort_keys=True), "smoke": False, "subset": "full",
              "device": "cpu", "model_sha256": None, "split_sha256": None, "runner": "local",
              "started_at": "2026-01-01T00:00:00+00:00", "finished_at": "2026-01-02T00:00:00+00:00", "wall_s": 60.0,
              "id_n": 4, "id_rmse": 0.1, "ood_n": 5, "ood_rmse": 0.2, "ood_mae": 0.1, "ood_max_error": 0.4,
              "ood_id_ratio": pytest.approx(2.0), "folder": str(tree / "10k_csd" / "density" / "rf" / "a0")}
    assert {k: first[k] for k in expect} == expect
    failed = frame.iloc[4].to_dict()
    assert (failed["status"], failed["reason"], failed["subset"]) == ("failed", "crashed: exit 1", "full")
    assert math.isnan(failed["ood_rmse"]) and math.isnan(failed["ood_id_ratio"])
    assert frame.iloc[3]["subset"] == "n80" and frame.iloc[3]["config"] == "defaults · n80"


def test_notes_reach_the_markdown(tree: Path, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "extrapolation_gone.png").write_bytes(b"old")  # a task no longer on the board
    md, written = report.write(tmp_path / "out", tree)
    assert not (tmp_path / "out" / "extrapolation_gone.png").exists(), "a stale figure is removed"
    rows, notes = report.load(tree)
    assert notes, "no labels prepared: the intervals cannot be computed and a note says so"
    text = (tmp_path / "out" / "leaderboard.md").read_text()
    assert text.endswith("\nNotes:\n\n" + "".join(f"- {n}\n" for n in notes))
    assert text == report.MD_HEAD + md + "\nNotes:\n\n" + "".join(f"- {n}\n" for n in notes)


def test_smoke_is_inferred_only_for_the_smoke_settings() -> None:
    """Records written before 'smoke' was recorded: smoke exactly when the settings are the model's smoke ones."""
    from boom_schema import RunRecord, RunStatus

    def old(hyper: dict) -> RunRecord:
        return RunRecord.model_validate(dict(run_id="r", model="rf", dataset="10k_csd", property="density", seed=0,
                                             status=RunStatus.OK, runner="local", device="cpu", hyperparameters=hyper,
                                             started_at="t", finished_at="t", wall_s=1.0))

    assert report._is_smoke(old({**RF_DEFAULTS, "n_estimators": 20})) is True
    assert report._is_smoke(old(RF_DEFAULTS)) is False
    assert report._is_smoke(old({**RF_DEFAULTS, "n_estimators": 3})) is False
    assert report.subset_parts("n80-train5") == (80, 5) and report.subset_parts("train1") == (None, 1)


def test_commit_stamp_of_a_fresh_checkout(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    git = lambda *a: subprocess.run(["git", "-C", str(tmp_path), *a], capture_output=True, text=True,  # noqa: E731
                                    check=True, env={**os.environ, **env}).stdout.strip()
    git("init", "-q")
    (tmp_path / "f.txt").write_text("1")
    git("add", "f.txt")
    git("commit", "-q", "-m", "one")
    monkeypatch.setattr(report.paths, "repo_root", lambda: tmp_path)
    sha = git("rev-parse", "--short=12", "HEAD")
    assert report.project_commit() == sha
    (tmp_path / "untracked.txt").write_text("x")
    assert report.project_commit() == sha, "untracked files do not make a checkout dirty"
    (tmp_path / "f.txt").write_text("2")
    assert report.project_commit() == sha + "+dirty"

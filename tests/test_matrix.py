"""`boom matrix`: the cells a spec supports, parallel jobs sharing the cores, resuming after a kill.

Uses the fixture model (tests/fixtures/models/broken) through the local runner: no Docker needed here
(tests/test_docker_runner.py runs a matrix through the Docker runner).
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "models"


@pytest.fixture
def fixture_models(monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BOOM_MODELS_DIR", str(FIXTURES))
    return FIXTURES


def test_cells_follow_the_specs(fixture_models) -> None:
    from boom import matrix

    cells = matrix.cells(["broken"], None, None)
    assert len(cells) == 10 and {c.seed for c in cells} == {0}  # every supported task, spec.seeds = 1
    cells = matrix.cells(["broken"], ["hof", "density"], [0, 1, 2])
    assert [(c.prop, c.seed) for c in cells] == [("density", 0), ("density", 1), ("density", 2),
                                                 ("hof", 0), ("hof", 1), ("hof", 2)]
    with pytest.raises(ValueError, match="unknown model"):
        matrix.cells(["nope"], None, None)
    with pytest.raises(ValueError, match="unknown propert"):
        matrix.cells(["broken"], ["densty"], None)


def test_seed_lists_and_thread_division() -> None:
    from boom import matrix

    assert matrix.parse_seeds("0-2,5") == [0, 1, 2, 5]
    assert matrix.parse_seeds(None) is None
    assert matrix.threads_per_job(2, cores=2) == 1
    assert matrix.threads_per_job(1, cores=8) == 8
    assert matrix.threads_per_job(16, cores=4) == 1
    assert matrix.threads_per_job(3, cores=8) == 2  # floor division
    assert matrix.threads_per_job(0, cores=4) == 4  # jobs below 1 count as 1


def test_thread_division_defaults_to_the_machines_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    from boom import matrix

    monkeypatch.setattr(matrix.os, "cpu_count", lambda: 6)
    assert matrix.threads_per_job(2) == 3
    monkeypatch.setattr(matrix.os, "cpu_count", lambda: None)  # unknown: one core
    assert matrix.threads_per_job(2) == 1 and matrix.threads_per_job(1) == 1


def test_matrix_command_runs_reports_and_skips_done_cells(prepared, fixture_models, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from boom.cli import main

    monkeypatch.setenv("BOOM_RESULTS_DIR", str(tmp_path / "results"))
    args = ["matrix", "--models", "broken", "--props", "density,hof", "--seeds", "0,1", "--jobs", "2",
            "--subset", "80"]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "4 cells: 4 ok (0 already done), 0 failed" in first.output
    per_job = max(1, (os.cpu_count() or 1) // 2)  # the cores divided between the 2 jobs
    assert f"2 job(s), {per_job} thread(s) per job" in first.output, first.output
    assert (tmp_path / "results" / "leaderboard.md").exists()
    again = CliRunner().invoke(main, args)
    assert "4 cells: 4 ok (4 already done), 0 failed" in again.output
    # a failing cell is a row; --strict turns it into exit 1
    failing = CliRunner().invoke(main, ["matrix", "--models", "broken", "--props", "mu", "--subset", "80",
                                        "--set", "mode=crash", "--strict"])
    assert failing.exit_code == 1
    assert "deliberate crash" in failing.output


def _records(results: Path) -> dict[str, str]:
    out = {}
    for rec in results.glob("*/*/broken/*/record.json"):
        data = json.loads(rec.read_text())
        out[data["property"]] = data["status"]
    return out


def test_killed_matrix_keeps_finished_runs_and_resumes(prepared, fixture_models, tmp_path: Path) -> None:
    results = tmp_path / "results"
    env = {**os.environ, "BOOM_RESULTS_DIR": str(results), "BOOM_MODELS_DIR": str(FIXTURES)}
    args = [sys.executable, "-m", "boom.cli", "matrix", "--models", "broken", "--props", "density,hof,mu",
            "--subset", "80", "--set", "mode=slow_ok", "--set", "sleep_s=4", "--no-report"]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and not _records(results):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole matrix, model process included
    proc.wait()
    done_before = _records(results)
    assert done_before and all(s == "ok" for s in done_before.values()), done_before
    assert len(done_before) < 3, "the matrix finished before it could be killed"
    rerun = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert rerun.stdout.count("already done") >= len(done_before) + 1  # the lines and the summary note
    assert _records(results) == {"density": "ok", "hof": "ok", "mu": "ok"}


def test_run_matrix_and_summary_without_running_models(fixture_models, monkeypatch: pytest.MonkeyPatch) -> None:
    """run_matrix's bookkeeping with plan/execute replaced: each cell planned once, a setup error is a row, threads
    are divided, the results come back in cell order, and the summary counts what happened."""
    from types import SimpleNamespace

    from boom import matrix, orchestrate
    from boom.options import RunOptions
    from boom_schema import RunStatus

    calls: list[tuple] = []
    planned: list[tuple] = []
    caps: list = []
    monkeypatch.setattr(matrix.os, "cpu_count", lambda: 8)  # 2 jobs on 8 cores: 4 threads each

    crash = "deliberate crash: " + "x" * 80  # longer than the summary's 70-character note

    def fake_plan(model, prop, seed, options, threads_cap=None):
        planned.append((prop, seed))
        caps.append(threads_cap)
        if prop == "hof":
            raise orchestrate.RunSetupError("hof is not prepared")
        threads = options.threads or threads_cap
        return SimpleNamespace(model=model, prop=prop, seed=seed, options=options,
                               task=SimpleNamespace(threads=threads, time_budget_s=options.timeout_s))

    def fake_execute(p, runner, feedback=None):
        calls.append((p.prop, p.seed, p.task.threads, p.task.time_budget_s, p.options.force))
        status = RunStatus.OK if p.seed == 0 else RunStatus.FAILED
        scores = SimpleNamespace(id=SimpleNamespace(rmse=0.25), ood=SimpleNamespace(rmse=1.5))
        record = SimpleNamespace(status=status, reason=None if p.seed == 0 else crash, wall_s=2.0)
        return SimpleNamespace(record=record, scores=scores if p.seed == 0 else None, folder=f"/r/{p.prop}/{p.seed}",
                               skipped=(p.prop, p.seed) == ("mu", 0))

    monkeypatch.setattr(orchestrate, "plan", fake_plan)
    monkeypatch.setattr(orchestrate, "execute", fake_execute)
    cells = matrix.cells(["broken"], ["density", "hof", "mu"], [0, 1])
    lines: list[str] = []
    out = matrix.run_matrix(cells, None, RunOptions(timeout_s=9, force=True), jobs=2, echo=lines.append)
    assert [r.cell for r in out] == cells  # cell order, whatever order the jobs finished in
    by = {(r.cell.prop, r.cell.seed): r for r in out}
    assert by[("hof", 0)].status == "error" and "hof is not prepared" in by[("hof", 0)].reason
    assert by[("density", 0)].status == "ok" and (by[("density", 0)].id_rmse, by[("density", 0)].ood_rmse) == (0.25, 1.5)
    assert by[("density", 1)].status == "failed" and by[("density", 1)].ood_rmse is None
    assert by[("mu", 0)].skipped and not by[("density", 0)].skipped
    assert set(caps) == {4}, "threads_per_job(2 jobs, 8 cores) reaches plan as the cap"
    assert sorted(calls) == sorted((p, s, 4, 9, True) for p in ("density", "mu") for s in (0, 1))
    assert sorted(planned) == sorted((p, s) for p in ("density", "hof", "mu") for s in (0, 1))  # once per cell
    assert any("not run: hof is not prepared" in line for line in lines)
    # one line per finished cell: [k/N] of the runnable cells, elapsed and an ETA (0s after the last)
    done = [line for line in lines if line.startswith("[") and "] [broken " in line]
    assert [line.split("]")[0] for line in done] == ["[1/4", "[2/4", "[3/4", "[4/4"], lines
    assert any(re.match(r"\[\d/4\] \[broken mu seed 0\] already done \(2\.0 s\)", line) for line in done), done
    assert all(re.search(r"\| elapsed \d+s, ETA \d+s$", line) for line in done), done
    assert done[-1].endswith("ETA 0s")
    assert any(re.match(r"\[\d/4\] \[broken density seed 0\] ok \(2\.0 s\) OOD RMSE 1\.5 \|", line) for line in done), done
    assert any(re.match(rf"\[\d/4\] \[broken density seed 1\] failed \(2\.0 s\) {crash} \|", line) for line in done), done
    text = matrix.summary(out)
    rows = text.splitlines()
    assert rows[0].split() == ["model", "property", "seed", "status", "ID", "RMSE", "OOD", "RMSE", "wall", "s", "note"]
    assert set(rows[1]) == {"-"} and len(rows[1]) == len(rows[0])
    assert rows[-1] == "6 cells: 2 ok (1 already done), 4 failed"
    body = {tuple(r.split()[:3]): r for r in rows[2:-1]}
    assert body[("broken", "density", "0")].split() == ["broken", "density", "0", "ok", "0.25", "1.5", "2.0"]
    failed = body[("broken", "density", "1")]
    assert failed.split()[:7] == ["broken", "density", "1", "failed", "—", "—", "2.0"] and failed.endswith("  " + crash[:70])
    assert body[("broken", "mu", "0")].endswith("  already done")
    assert body[("broken", "hof", "0")].split()[3] == "error"
    seen: list[str] = []
    assert matrix.conclude(out, write_report=False, echo=seen.append) is False
    assert seen == ["", text], "conclude prints a blank line and the summary, and no leaderboard line without a report"
    assert matrix.conclude([by[("density", 0)]], write_report=False, echo=seen.append) is True
    assert matrix.parse_list(" a, ,b ") == ["a", "b"] and matrix.parse_list("") is None
    caps.clear()
    matrix.run_matrix(cells[:1], None, RunOptions(threads=3), jobs=2, echo=lines.append)
    assert caps == [None], "explicit --threads: no cap from the job count"
    assert matrix.cells_for("broken", "mu,density", RunOptions(seeds=(4,))) == [
        matrix.Cell("broken", "density", 4), matrix.Cell("broken", "mu", 4)]


def test_matrix_rows_for_crashes_messages_feedback_and_the_report_line(fixture_models, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The rest of run_matrix's bookkeeping: an orchestrator exception is an `error` row with its type and a wall
    time, a failed record never carries RMSEs (even with scores), log lines get the cell's prefix, the default is
    one job on all cores, and the one-line messages are exact."""
    from types import SimpleNamespace

    from boom import matrix, orchestrate, registry, report
    from boom.options import RunOptions
    from boom_schema import PROPERTIES, RunStatus

    row = matrix.CellResult(matrix.Cell("m", "density", 0), "ok")
    assert (row.reason, row.wall_s, row.folder, row.skipped, row.id_rmse, row.ood_rmse) == ("", 0.0, "", False, None, None)
    with pytest.raises(ValueError) as err:
        matrix.cells(["nope"], None, None)
    assert str(err.value) == f"unknown model(s) ['nope']; available: {', '.join(registry.discover())}"
    with pytest.raises(ValueError) as err:
        matrix.cells(None, ["densty"], None)
    assert str(err.value) == f"unknown propert(y/ies) ['densty']; valid: {', '.join(PROPERTIES)}"
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("BOOM_MODELS_DIR", str(tmp_path / "empty"))
    with pytest.raises(ValueError) as err:
        matrix.cells(["nope"], None, None)
    assert str(err.value) == "unknown model(s) ['nope']; available: (none)"
    monkeypatch.setenv("BOOM_MODELS_DIR", str(fixture_models))

    caps, feedbacks = [], {}
    monkeypatch.setattr(matrix.os, "cpu_count", lambda: 6)

    def fake_plan(model, prop, seed, options, threads_cap=None):
        caps.append(threads_cap)
        if prop == "hof":
            raise ValueError("hof needs --subset")
        return SimpleNamespace(model=model, prop=prop, seed=seed, options=options)

    def fake_execute(p, runner, feedback=None):
        feedbacks[p.prop] = feedback
        if p.prop == "mu":
            raise RuntimeError("runner exploded")
        scores = SimpleNamespace(id=SimpleNamespace(rmse=0.5), ood=SimpleNamespace(rmse=2.0))
        record = SimpleNamespace(status=RunStatus.FAILED, reason=None, wall_s=3.0)  # failed, though scores exist
        return SimpleNamespace(record=record, scores=scores, folder=tmp_path, skipped=False)

    monkeypatch.setattr(orchestrate, "plan", fake_plan)
    monkeypatch.setattr(orchestrate, "execute", fake_execute)
    cells = matrix.cells(["broken"], ["density", "hof", "mu"], [0])
    lines: list[str] = []
    logged: list[str] = []
    out = {r.cell.prop: r for r in matrix.run_matrix(cells, None, RunOptions(), echo=lines.append, log_line=logged.append)}
    assert caps == [6, 6, 6], "one job by default: all the cores"
    assert "[broken hof seed 0] not run: hof needs --subset" in lines
    assert out["hof"].status == "error" and out["hof"].reason == "hof needs --subset"
    crash = out["mu"]
    assert crash.status == "error" and crash.reason == "RuntimeError: runner exploded" and 0 <= crash.wall_s < 60
    failed = out["density"]
    assert failed.status == "failed" and failed.reason == "" and (failed.id_rmse, failed.ood_rmse) == (None, None)
    assert failed.folder == str(tmp_path) and failed.wall_s == 3.0
    assert any(line.startswith("[") and "[broken density seed 0] failed (3.0 s)  | elapsed" in line for line in lines), lines
    fb = feedbacks["density"]
    assert fb.log_line == logged.append and fb.prefix == "  broken/density/0 | "
    matrix.run_matrix(cells[:1], None, RunOptions(), echo=lines.append)
    assert feedbacks["density"] is None, "no log_line: no feedback object"

    monkeypatch.setattr(report, "write", lambda: (None, [Path("a.md"), Path("b.html")]))
    seen: list[str] = []
    assert matrix.conclude([out["density"]], write_report=True, echo=seen.append) is False
    assert seen[0] == "" and seen[-1] == "leaderboard: a.md, b.html"

"""The results tree (boom.results) without running a model: run ids, folders, the orchestrator's own files, the
checks after a run, the archive of earlier attempts.  Hand-made folders only, so these are unit tests."""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import pytest

from boom import results, runfiles
from boom_schema import ModelReport, PredictionsError, RunRecord, RunStatus, Scores, SplitScores

SPLIT = SplitScores(n=2, rmse=1.0, mae=1.0, r2=0.5, max_error=1.0)


def _record(rid: str = "r1", status: RunStatus = RunStatus.OK, **kw) -> RunRecord:
    return RunRecord(run_id=rid, model="rf", dataset="10k_csd", property="density", seed=0, status=status,
                     runner="local", device="cpu", started_at="2026-01-01T00:00:00+00:00",
                     finished_at="2026-01-01T00:01:00+00:00", wall_s=60.0, **kw)


def _scores(rid: str = "r1") -> Scores:
    return Scores(run_id=rid, model="rf", dataset="10k_csd", property="density", unit="g/cm^3", seed=0,
                  id=SPLIT, ood=SPLIT, ood_id_rmse_ratio=1.0)


def test_run_id_is_the_documented_hash_and_stays_pinned():
    """A run id changes only with its inputs; changing how it is computed would orphan every stored result."""
    args = ("abc", {"train.csv": "1", "test.csv": "2"}, {"n_estimators": 500}, 3, "train300", "cpu")
    want = hashlib.sha256(json.dumps({"contract": "2.0", "model": "abc", "data": args[1], "params": args[2],
                                      "seed": 3, "subset": "train300", "device": "cpu"},
                                     sort_keys=True).encode()).hexdigest()[:16]
    assert results.run_id(*args) == want == "b58420a3f7daf120"
    assert len(results.run_id(*args)) == 16
    for i, other in enumerate(("abd", {"train.csv": "1"}, {"n_estimators": 50}, 4, None, "cuda")):
        changed = list(args)
        changed[i] = other
        assert results.run_id(*changed) != want, f"argument {i} must enter the run id"


def test_run_dir_layout_and_default_root(tmp_path, monkeypatch):
    assert results.run_dir("qm9", "mu", "mlp", "x1", tmp_path) == tmp_path / "qm9" / "mu" / "mlp" / "x1"
    monkeypatch.setenv("BOOM_RESULTS_DIR", str(tmp_path / "elsewhere"))
    assert results.run_dir("qm9", "mu", "mlp", "x1") == tmp_path / "elsewhere" / "qm9" / "mu" / "mlp" / "x1"


def test_own_files_read_back_and_anything_else_is_absent(tmp_path):
    assert results.read_record(tmp_path) is None and results.read_scores(tmp_path) is None
    (tmp_path / "record.json").write_text(_record().model_dump_json())
    (tmp_path / "scores.json").write_text(_scores().model_dump_json())
    assert results.read_record(tmp_path) == _record() and results.read_scores(tmp_path) == _scores()
    (tmp_path / "scores.json").write_text('{"run_id": "r1"}')  # not a Scores
    assert results.read_scores(tmp_path) is None
    (tmp_path / "record.json").unlink()
    (tmp_path / "record.json").symlink_to(tmp_path / "scores.json")  # a planted link is never followed
    assert results.read_record(tmp_path) is None
    (tmp_path / "scores.json").write_text("x" * (results.limits.SCORES_MAX_BYTES + 1))
    assert results.read_scores(tmp_path) is None


def test_model_report_is_read_or_refused_in_one_line(tmp_path):
    assert results.read_model_report(tmp_path) is None
    (tmp_path / "model_report.json").write_text(ModelReport(n_parameters=7).model_dump_json())
    assert results.read_model_report(tmp_path).n_parameters == 7
    for text, field, msg in (('{"n_parameters": "many"}', "n_parameters",
                              "Input should be a valid integer, unable to parse string as an integer"),
                             ('{"timings": {"train_s": "slow"}}', "timings.train_s",
                              "Input should be a valid number, unable to parse string as a number"),
                             ("[]", "(top level)", "Input should be an object")):
        (tmp_path / "model_report.json").write_text(text)
        with pytest.raises(runfiles.UnsafeEntry) as err:
            results.read_model_report(tmp_path)
        assert str(err.value) == f"model_report.json is not a valid report: field '{field}': {msg}"


def test_predictions_are_read_within_their_size_limit(tmp_path):
    with pytest.raises(PredictionsError) as err:
        results.read_predictions(tmp_path, 10)
    assert str(err.value) == "predictions.csv: file not found (the model wrote no predictions)"
    (tmp_path / "predictions.csv").write_text("mol_id,y_pred\na,1\n")
    assert results.read_predictions(tmp_path, 10) == "mol_id,y_pred\na,1\n"
    (tmp_path / "predictions.csv").write_text("x" * (results.limits.predictions_max_bytes(1) + 1))
    with pytest.raises(PredictionsError):
        results.read_predictions(tmp_path, 1)


def test_check_after_run_sweeps_links_and_keeps_a_runners_disk_reason(tmp_path):
    (tmp_path / "predictions.csv").write_text("mol_id,y_pred\n")
    (tmp_path / "escape").symlink_to("/etc/passwd")
    problems = results.check_after_run(tmp_path, disk_gb=1.0)
    assert len(problems) == 1 and "escape" in problems[0] and not os.path.lexists(tmp_path / "escape")
    assert results.check_after_run(tmp_path, disk_gb=1.0) == []
    stopped = f"stopped: the run folder passed {runfiles.DISK_LIMIT_NAME}"
    assert results.check_after_run(tmp_path, 1.0, runner_error=stopped) == [stopped]
    assert results.check_after_run(tmp_path, 1.0, runner_error="exit code 3") == [], "only a disk reason is kept"
    (tmp_path / "big.bin").write_bytes(b"0" * 4096)
    over = results.check_after_run(tmp_path, disk_gb=1e-6)
    assert len(over) == 1 and runfiles.DISK_LIMIT_NAME in over[0]


def test_check_after_run_clears_the_orchestrators_names_and_caps_log_txt(tmp_path, monkeypatch):
    """A model that plants a directory at record.json, scores.json or parity.png would stop the orchestrator from
    writing its own files there; an oversized log.txt (that name: the one the runners write) is cut."""
    assert results.OWN_FILES == ("record.json", "scores.json", "parity.png")
    for name in results.OWN_FILES:
        (tmp_path / name).mkdir()
        (tmp_path / name / "inside").write_text("x")
    (tmp_path / "other").mkdir()  # a model's own folder stays
    monkeypatch.setattr(runfiles.limits, "LOG_MAX_BYTES", 100)
    (tmp_path / "log.txt").write_text("a" * 500)
    (tmp_path / "notes.txt").write_text("b" * 500)  # not the log: never cut
    problems = results.check_after_run(tmp_path, disk_gb=1.0)
    assert sorted(problems) == sorted(f"{n} was a directory (removed; the orchestrator writes that name)"
                                      for n in results.OWN_FILES)
    assert not any(os.path.lexists(tmp_path / n) for n in results.OWN_FILES) and (tmp_path / "other").is_dir()
    log = (tmp_path / "log.txt").read_text()
    assert log.startswith("a" * 50) and log.endswith("a" * 50) and "over its limit" in log and len(log) < 500
    assert (tmp_path / "notes.txt").read_text() == "b" * 500


def test_iter_runs_lists_every_readable_record_with_its_scores(tmp_path):
    ok = results.run_dir("10k_csd", "density", "rf", "r1", tmp_path)
    failed = results.run_dir("10k_csd", "density", "rf", "r2", tmp_path)
    broken = results.run_dir("10k_csd", "hof", "rf", "r3", tmp_path)
    first = results.run_dir("10k_csd", "density", "rf", "r0", tmp_path)  # unreadable and listed first: skipped, not the end
    for f in (ok, failed, broken, first):
        f.mkdir(parents=True)
    (first / "record.json").write_text("[]")
    (ok / "record.json").write_text(_record("r1").model_dump_json())
    (ok / "scores.json").write_text(_scores("r1").model_dump_json())
    (failed / "record.json").write_text(_record("r2", RunStatus.FAILED, reason="crashed").model_dump_json())
    (broken / "record.json").write_text("{")
    (tmp_path / "10k_csd" / "record.json").write_text(_record("shallow").model_dump_json())  # not a run folder
    got = [(r.run_id, s is not None, folder) for r, s, folder in results.iter_runs(tmp_path)]
    assert got == [("r1", True, ok), ("r2", False, failed)]


def test_archive_previous_keeps_every_attempt_and_ignores_a_planted_link(tmp_path):
    results.archive_previous(tmp_path / "absent")  # nothing to keep: no error, nothing created
    assert not (tmp_path / "absent").exists()
    run = tmp_path / "run"
    run.mkdir()
    (run / "predictions.csv").write_text("first")
    results.archive_previous(run)
    (first,) = (run / "previous").iterdir()
    assert re.fullmatch(r"\d{8}T\d{12}", first.name), "previous/<YYYYmmddTHHMMSSffffff>: sorts by time"
    assert (first / "predictions.csv").read_text() == "first" and sorted(p.name for p in run.iterdir()) == ["previous"]
    (run / "predictions.csv").write_text("second")
    results.archive_previous(run)
    kept = sorted((run / "previous").iterdir())
    assert len(kept) == 2 and (kept[1] / "predictions.csv").read_text() == "second"
    outside = tmp_path / "outside"
    outside.mkdir()
    other = tmp_path / "run2"
    other.mkdir()
    (other / "log.txt").write_text("x")
    (other / "previous").symlink_to(outside)  # a model's link must not receive the earlier files
    results.archive_previous(other)
    assert list(outside.iterdir()) == [] and (other / "previous").is_dir() and not (other / "previous").is_symlink()


def test_dump_is_sorted_and_indented():
    assert results.dump({"b": 1, "a": [1]}) == '{\n  "a": [\n    1\n  ],\n  "b": 1\n}'

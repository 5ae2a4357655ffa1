"""The Slurm executor against a real single-node Slurm (slurmctld + slurmd + munge started here).

Under CI=true these tests run; without CI they skip only when Slurm cannot be started (packages missing,
not root).  A small matrix (rf, density and hof x 2 seeds, subset 120, smoke) runs as one job array and
must give the local executor's exact leaderboard; a cell past its Slurm time limit and a cancelled
submission must become failed records with Slurm's reason; a resubmission retries only failed cells.
The parsers and the config precedence are tested without Slurm.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from boom.options import RunOptions, parse_run_args
from boom.slurm import commands
from boom.slurm.config import SlurmConfig, format_time, load, parse_time_s

REPO = Path(__file__).resolve().parents[1]
FIXTURE_MODELS = REPO / "tests" / "fixtures" / "models"
IN_CI = os.environ.get("CI", "").lower() == "true"
RF_CELLS = dict(models=["rf"], props=["density", "hof"], seeds=[0, 1])
SUBSET = 120
RF_OPTIONS = RunOptions(subset=SUBSET, smoke=True, threads=1)


# --------------------------------------------------------------------------------------------------
# Without Slurm: parsers, config, batch script
# --------------------------------------------------------------------------------------------------

def test_parse_parsable():
    assert commands.parse_parsable("1234\n") == "1234"
    assert commands.parse_parsable("1234;cluster-a\n") == "1234"
    with pytest.raises(commands.SlurmError):
        commands.parse_parsable("sbatch: error: Batch job submission failed")


def test_parse_squeue_and_sacct_array_tasks():
    sq = "12_0|RUNNING|None|0:05|1:00\n12_[1-3,5%2]|PENDING|JobArrayTaskLimit|0:00|1:00\n13_0|RUNNING|None|0:01|1:00\n"
    got = commands.parse_squeue(sq, "12")
    assert sorted(got) == [0, 1, 2, 3, 5]
    assert got[0].state == "RUNNING" and got[0].active and got[5].reason == "JobArrayTaskLimit"
    sa = ("12_0|TIMEOUT|0:0|00:01:27|00:01:00\n12_1|CANCELLED by 0|0:0|00:00:00|00:01:00\n"
          "12_2|OUT_OF_MEMORY|0:125|00:00:10|00:01:00\n12_3|NODE_FAIL|0:0|00:00:10|00:01:00\n"
          "12_4|PREEMPTED|0:0|00:00:10|00:01:00\n12_5|FAILED|1:0|00:00:10|00:01:00\n12_6|COMPLETED|0:0|00:00:10|00:01:00\n")
    got = commands.parse_sacct(sa, "12")
    assert [got[i].state for i in range(7)] == ["TIMEOUT", "CANCELLED", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED",
                                                "FAILED", "COMPLETED"]
    assert all(got[i].terminal for i in range(7)) and not any(got[i].active for i in range(7))
    text = commands.describe(got[0])
    assert "TIMEOUT" in text and "time limit 00:01:00" in text
    assert "memory" in commands.describe(got[2]) and "exit 0:125" in commands.describe(got[2])


def test_time_formats():
    assert parse_time_s("90") == 90 * 60
    assert parse_time_s("01:30") == 90
    assert parse_time_s("02:00:00") == 7200
    assert parse_time_s("1-02:00:00") == 93600
    assert format_time(61) == "00:02:00" and format_time(7200 + 720) == "02:12:00"
    assert format_time(86400 + 3600) == "1-01:00:00"


def test_config_precedence(tmp_path, monkeypatch):
    conf = tmp_path / "slurm.toml"
    conf.write_text('[slurm]\npartition = "file-part"\naccount = "file-acct"\nmax_parallel = 3\n'
                    'setup = ["module load x"]\n')
    monkeypatch.setenv("BOOM_SLURM_CONFIG", str(conf))
    monkeypatch.setenv("BOOM_SLURM_ACCOUNT", "env-acct")
    monkeypatch.setenv("BOOM_SLURM_SETUP", "source a;source b")
    cfg = load({"partition": "cli-part", "time": None})
    assert cfg.partition == "cli-part" and cfg.account == "env-acct" and cfg.max_parallel == 3
    assert cfg.setup == ("source a", "source b") and cfg.time is None
    conf.write_text("partiton = 'typo'\n")
    with pytest.raises(ValueError, match="unknown Slurm setting"):
        load()


def _exec_args(script: str, seed: str, threads: str) -> list[str]:
    """The ``boom run`` arguments of the job script's exec line, with the shell's variables filled in."""
    import shlex

    line = next(ln for ln in script.splitlines() if ln.startswith("exec "))
    words = shlex.split(line.replace('"$seed"', seed).replace('"$threads"', threads)
                        .replace('"$model"', "M").replace('"$prop"', "P"))
    return words[words.index("run") + 1:]


def test_job_script_runs_the_local_command(tmp_path):
    from boom.slurm.submit import job_script

    cfg = SlurmConfig(partition="p", account="a", max_parallel=4, setup=("module load cuda",))
    res = {"cpus": 2, "mem_mb": 8192, "time": "02:00:00", "gpus": 1}
    options = RunOptions(runner="docker", device="cuda", subset=120, smoke=True, overrides={"epochs": "3"})
    text = job_script(tmp_path, "sid", 6, res, cfg, options)
    for line in ("#SBATCH --array=0-5%4", "#SBATCH --cpus-per-task=2", "#SBATCH --mem=8192M", "#SBATCH --time=02:00:00",
                 "#SBATCH --partition=p", "#SBATCH --account=a", "#SBATCH --gres=gpu:1", "module load cuda",
                 'threads="${SLURM_CPUS_PER_TASK:-1}"'):
        assert line in text
    run = [ln for ln in text.splitlines() if ln.startswith("exec ")][0]
    assert ' run "$model" "$prop" --seed "$seed" --threads "$threads" --runner docker --device cuda --subset 120 --smoke --set epochs=3' in run
    assert "boom.cli" in run
    # what `boom run` makes of the line is the submitted options, with the cell's seed and Slurm's CPUs
    assert parse_run_args(_exec_args(text, "4", "2")) == ("M", "P", options.but(seeds=(4,), threads=2))


def test_every_run_option_survives_the_job_script(tmp_path):
    """Each option of RunOptions, set to a non-default value, comes back from the array task's arguments."""
    from dataclasses import fields

    from boom.slurm.submit import job_script

    options = RunOptions(seeds=(0, 1), overrides={"mode": "ok", "sleep_s": "2.5", "note": "a b=c"}, subset=40,
                         train_subset=30, smoke=True, device="cuda", threads=3, timeout_s=77, memory_gb=1.5,
                         cpus=0.5, runner="apptainer", force=True)
    default = RunOptions()
    assert all(getattr(options, f.name) != getattr(default, f.name) for f in fields(RunOptions))
    text = job_script(tmp_path, "sid", 2, {"cpus": 3, "mem_mb": 1536, "time": "00:10:00", "gpus": 0}, SlurmConfig(),
                      options)
    assert 'threads="3"' in text and '--threads "$threads"' not in text  # --threads travels in the options
    assert parse_run_args(_exec_args(text, "1", "ignored")) == ("M", "P", options.but(seeds=(1,)))


def test_run_options_round_trip_through_boom_run_arguments():
    options = RunOptions(seeds=(7,), overrides={"lr": "3e-4", "layers": "2"}, train_subset=300, device="cuda",
                         timeout_s=5, memory_gb=2.0, cpus=1.25, runner="docker")
    model, prop, back = parse_run_args(["rf", "density", "--seed", "7", *options.run_args()])
    assert (model, prop, back) == ("rf", "density", options)
    assert parse_run_args(["rf", "density"])[2] == RunOptions(seeds=(0,))
    assert RunOptions(overrides={"b": 1, "a": "x"}).overrides == (("a", "x"), ("b", "1"))  # sorted, text
    with pytest.raises(ValueError, match="one run has one seed"):
        RunOptions(seeds=(1, 2)).seed
    with pytest.raises(ValueError, match="unknown runner"):
        RunOptions(runner="podman")


def test_slurm_kills_become_failed_records_and_lost_jobs_do_not(tmp_path, monkeypatch):
    """States this machine's Slurm cannot produce (OOM, node failure, preemption), fed to the watcher."""
    from boom import results
    from boom.slurm import watch
    from boom.slurm.submit import Submission, SubmittedCell

    root = tmp_path / "results"
    monkeypatch.setenv("BOOM_RESULTS_DIR", str(root))
    cells = [SubmittedCell(i, "rf", "density", i, f"rid{i}", str(root / "10k_csd" / "density" / "rf" / f"rid{i}"),
                           "10k_csd", {"n_estimators": 20}, "n40", {"train": "abc"}) for i in range(5)]
    (tmp_path / "sub").mkdir()
    sub = Submission("sid", tmp_path / "sub", "7", cells, "local", "cpu", "2026-01-01T00:00:00+00:00")
    sub.save()
    T = commands.TaskState
    known = {0: T(0, "OUT_OF_MEMORY", exit_code="0:125", elapsed="00:00:10", job_id="7_0"),
             1: T(1, "NODE_FAIL", elapsed="00:01:00", job_id="7_1"), 2: T(2, "PREEMPTED", job_id="7_2"),
             3: T(3, "RUNNING", reason="None", job_id="7_3")}
    monkeypatch.setattr(commands, "task_states", lambda job: known)
    got = watch.states(sub)
    assert [c.state for c in got] == ["failed", "failed", "failed", "running", "unknown"]
    for i, word in enumerate(["OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED"]):
        rec = results.read_record(Path(cells[i].folder))
        assert rec.status.value == "failed" and f"slurm job 7_{i}: {word}" in rec.reason and rec.runner == "slurm+local"
        assert rec.data_sha256 == {"train": "abc"} and rec.hyperparameters == {"n_estimators": 20}
    assert results.read_record(Path(cells[0].folder)).wall_s == 10.0
    assert results.read_record(Path(cells[3].folder)) is None
    monkeypatch.setattr(commands, "task_states", lambda job: {})  # purged, no accounting
    got = watch.states(sub)
    assert [c.state for c in got] == ["failed", "failed", "failed", "lost", "lost"]
    assert results.read_record(Path(cells[3].folder)) is None and sub.finished_at is None


def test_apptainer_command_follows_the_documented_cli(tmp_path):
    """Command construction only: Apptainer itself is not installed on these machines."""
    from boom_schema import Task
    from boom import registry
    from boom.runners.apptainer import ApptainerRunner, sif_name

    assert sif_name("boom-tte/rf:0123456789ab") == "rf-0123456789ab.sif"
    entry = registry.get("rf")
    task = Task(run_id="r", model="rf", dataset="10k_csd", property="density", unit="g/cm^3", readout="mean",
                input_dir=str(tmp_path / "in"), output_dir=str(tmp_path / "run"), seed=0,
                hyperparameters={}, device="cuda", threads=2, time_budget_s=60, subset=None)
    runner = ApptainerRunner(executable="apptainer", images=tmp_path / "sif")
    view = runner.task_view(task)
    assert (view.input_dir, view.output_dir) == ("/task/input", "/task/output")
    cmd = runner.command(entry, task, tmp_path / "run", tmp_path / "sif" / "rf-x.sif")
    assert cmd[:4] == ["apptainer", "exec", "--containall", "--cleanenv"]
    assert f"{(tmp_path / 'in').resolve()}:/task/input:ro" in cmd and "--nv" in cmd and "OMP_NUM_THREADS=2" in cmd
    assert cmd[-4:] == [str(tmp_path / "sif" / "rf-x.sif"), "python", "main.py", "/task/output/task.json"]
    ex = runner.execute(entry, task, tmp_path / "run", tmp_path / "log.txt", 60)
    assert ex.error and "apptainer build" in ex.error and "docker-daemon://boom-tte/rf:" in ex.error


# --------------------------------------------------------------------------------------------------
# With a real single-node Slurm
# --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    from tests import slurm_support

    try:
        c = slurm_support.start(tmp_path_factory.mktemp("slurm"), install=IN_CI)
    except slurm_support.SlurmUnavailable as exc:
        if IN_CI:
            pytest.fail(f"CI=true but a local Slurm could not be started: {exc}")
        pytest.skip(f"no local Slurm: {exc}")
    yield c
    c.stop()


@pytest.fixture(scope="module")
def results_root(prepared, tmp_path_factory):
    """This module's own results tree: runs of the same cells by other test files (same inputs, same run
    ids) would otherwise count as already done here."""
    root = tmp_path_factory.mktemp("slurm-results")
    saved = os.environ.get("BOOM_RESULTS_DIR")
    os.environ["BOOM_RESULTS_DIR"] = str(root)
    yield root
    if saved is None:
        os.environ.pop("BOOM_RESULTS_DIR", None)
    else:
        os.environ["BOOM_RESULTS_DIR"] = saved


def _cfg(**kw) -> SlurmConfig:
    return load({"poll_s": 2.0, **kw})


@pytest.fixture(scope="module")
def timeout_submission(cluster, results_root):
    """A fixture model that sleeps past a 1-minute Slurm limit (Slurm's granularity), submitted early."""
    from boom import matrix, slurm

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BOOM_MODELS_DIR", str(FIXTURE_MODELS))
        cells = matrix.cells(["broken"], ["density"], [0])
        sub, _ = slurm.run_matrix(cells, _cfg(time="00:01:00"),
                                  RunOptions(overrides={"mode": "sleep", "sleep_s": "900"}, subset=40, threads=1),
                                  wait=False, echo=lambda s: None)
    assert sub is not None and len(sub.cells) == 1
    return sub


def _rf_rows(root: Path) -> list[dict]:
    from boom import report

    rows = [r for r in report.table(report.collect(root)) if r["model"] == "rf" and r["subset"] == f"n{SUBSET}"]
    return sorted(rows, key=lambda r: r["property"])


def test_matrix_on_slurm_equals_local_executor(cluster, results_root, timeout_submission, tmp_path):
    from boom import matrix, slurm
    from boom.runners.local import LocalRunner

    cells = matrix.cells(RF_CELLS["models"], RF_CELLS["props"], RF_CELLS["seeds"])
    assert len(cells) == 4
    sub, _ = slurm.run_matrix(cells, _cfg(max_parallel=2), RF_OPTIONS, wait=False)
    assert sub is not None and len(sub.cells) == 4
    script = (sub.folder / "job.sh").read_text()
    assert "#SBATCH --array=0-3%2" in script and "#SBATCH --cpus-per-task=1" in script
    assert (sub.folder / "cells.tsv").read_text().count("\n") == 5

    # The same cells with the local executor, into another results tree, while the array runs.
    local_root = tmp_path / "local-results"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BOOM_RESULTS_DIR", str(local_root))
        local = matrix.run_matrix(cells, LocalRunner(), RF_OPTIONS, echo=lambda s: None)
    assert all(r.status == "ok" for r in local), [r.reason for r in local]

    final = slurm.follow([sub], poll_s=2.0, timeout_s=900)
    assert [cs.state for cs in final] == ["done"] * 4, [cs.reason for cs in final]
    for cs in final:
        assert cs.record.status.value == "ok" and cs.record.runner == "local"
        assert (Path(cs.cell.folder) / "scores.json").exists()
        assert "1 thread(s)" in (sub.folder / "logs" / f"{cs.cell.index}.out").read_text()

    slurm_rows, local_rows = _rf_rows(results_root), _rf_rows(local_root)
    assert len(slurm_rows) == 2 and [r["seeds"] for r in slurm_rows] == [2, 2]
    keys = ["property", "model", "subset", "seeds", "failed", "id_rmse", "id_rmse_sd", "ood_rmse", "ood_rmse_sd",
            "id_mae", "ood_mae", "id_r2", "ood_r2"]
    assert [{k: r[k] for k in keys} for r in slurm_rows] == [{k: r[k] for k in keys} for r in local_rows]

    # Resumable: everything is done, so nothing is submitted again.
    again, results = slurm.run_matrix(cells, _cfg(), RF_OPTIONS, wait=False)
    assert again is None and all(r.skipped and r.status == "ok" for r in results)

    # `boom matrix --status` through the CLI.
    from click.testing import CliRunner
    from boom.cli import main

    out = CliRunner().invoke(main, ["matrix", "--executor", "slurm", "--status", "--models", "rf",
                                    "--props", "density,hof", "--seeds", "0,1"])
    assert out.exit_code == 0, out.output
    assert "4 cells: 0 pending, 0 running, 4 done, 0 failed" in out.output


def test_cancel_and_resubmit_retries_only_failed(cluster, results_root):
    from boom_schema import RunStatus
    from boom import matrix, results, runfiles, slurm
    from boom.slurm.watch import states

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BOOM_MODELS_DIR", str(FIXTURE_MODELS))
        cells = matrix.cells(["broken"], ["hof"], [0, 1])
        sets = RunOptions(overrides={"mode": "sleep", "sleep_s": "900"}, subset=40, threads=1)
        sub, _ = slurm.run_matrix(cells, _cfg(max_parallel=1), sets, wait=False, echo=lambda s: None)
        assert sub is not None and len(sub.cells) == 2
        assert sorted(cs.state for cs in states(sub)) in (["pending", "running"], ["pending", "pending"])
        # A second submission of the same cells while they are queued submits nothing.
        dup, res = slurm.run_matrix(cells, _cfg(), sets, wait=False, echo=lambda s: None)
        assert dup is None and all(r.status == "queued" for r in res)

        text = slurm.cancel_cells(cells)
        assert "cancelled job array(s) " + sub.job_id in text
        for c in sub.cells:
            rec = results.read_record(Path(c.folder))
            assert rec is not None and rec.status.value == "failed"
            assert f"slurm job {sub.job_id}_{c.index}: CANCELLED" in rec.reason

        # Make seed 0 a success by hand; a resubmission must retry only seed 1 (the failed cell).
        ok_cell = next(c for c in sub.cells if c.seed == 0)
        rec = results.read_record(Path(ok_cell.folder))
        runfiles.write_atomic(Path(ok_cell.folder) / "record.json",
                              rec.model_copy(update={"status": RunStatus.OK, "reason": None}).model_dump_json())
        retry, _ = slurm.run_matrix(cells, _cfg(), sets, wait=False, echo=lambda s: None)
        assert retry is not None and [(c.model, c.prop, c.seed) for c in retry.cells] == [("broken", "hof", 1)]
        slurm.cancel_cells(cells)
        assert results.read_record(Path(retry.cells[0].folder)).reason.startswith(f"slurm job {retry.job_id}_0: CANCELLED")


def test_time_limit_becomes_failed_record_with_slurms_reason(cluster, results_root, timeout_submission):
    from boom import report, results, slurm

    final = slurm.follow([timeout_submission], poll_s=2.0, timeout_s=300)
    (cs,) = final
    assert cs.state == "failed", cs.reason
    rec = results.read_record(Path(cs.cell.folder))
    assert rec.status.value == "timeout" and rec.runner == "slurm+local"
    assert f"slurm job {timeout_submission.job_id}_0: TIMEOUT" in rec.reason and "time limit" in rec.reason
    assert (Path(cs.cell.folder) / "task.json").exists()  # the cell had started: its files stay beside the record
    rows = [r for r in report.table(report.collect()) if r["model"] == "broken" and r["property"] == "density"]
    assert rows and rows[0]["failed"] == 1 and "TIMEOUT" in rows[0]["reason"]

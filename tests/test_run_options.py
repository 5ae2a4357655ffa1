"""Every run option, given on the command line, reaches a local cell, a Docker cell and a Slurm cell.

One set of non-default options (seed, --set, subset, train subset, smoke, device, threads, timeout, memory, CPUs,
force) goes through `boom run`, `boom matrix` (local runner), `boom matrix --runner docker` (a fake Docker client
records the container it is asked for: no daemon needed) and `boom matrix --executor slurm` (sbatch replaced;
the generated job script is then run by bash as Slurm would run array task 0).  The fixture model is
tests/fixtures/models/broken, copied with `gpu: optional` so that `--device cuda` is a valid request.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.docker_support import FakeDockerClient

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "models"
OPTIONS = ["--set", "mode=ok", "--set", "sleep_s=5", "--subset", "40", "--train-subset", "30", "--smoke",
           "--device", "cuda", "--threads", "1", "--timeout", "77", "--memory-gb", "0.5", "--cpus", "0.5", "--force"]
HYPERPARAMETERS = {"mode": "ok", "sleep_s": 5}


@pytest.fixture(scope="module")
def csd(boom_env):
    from boom.data.prepare import prepare

    prepare("10k_csd")
    return boom_env


@pytest.fixture
def models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, csd) -> Path:
    """A models folder with the fixture model, allowed on a GPU; a results tree of this test's own."""
    folder = tmp_path / "models"
    shutil.copytree(FIXTURES / "broken", folder / "broken")
    spec = folder / "broken" / "model.yaml"
    spec.write_text(spec.read_text().replace('gpu: "no"', "gpu: optional"))
    monkeypatch.setenv("BOOM_MODELS_DIR", str(folder))
    monkeypatch.setenv("BOOM_RESULTS_DIR", str(tmp_path / "results"))
    return folder


def _check_task(task: dict, seed: int) -> None:
    assert task["seed"] == seed and task["threads"] == 1 and task["time_budget_s"] == 77
    assert task["subset"] == "n40-train30" and task["device"] == "cuda"
    assert task["hyperparameters"] == HYPERPARAMETERS


def _invoke(args: list[str]):
    from boom.cli import main

    return CliRunner().invoke(main, args, catch_exceptions=False)


def test_boom_run_and_matrix_local_cells_get_every_option(models: Path) -> None:
    out = _invoke(["run", "broken", "density", "--seed", "2", *OPTIONS])
    assert out.exit_code == 0, out.output
    folder = Path(out.stdout.strip().splitlines()[-1].split("run folder: ")[1])
    _check_task(json.loads((folder / "task.json").read_text()), seed=2)
    record = json.loads((folder / "record.json").read_text())
    assert record["status"] == "ok" and record["smoke"] is True and record["device"] == "cuda"
    # live feedback (stderr, plain lines): where the run is before it runs, then the model's own log lines
    err = out.stderr.splitlines()
    assert err[0] == "broken density seed 2: running (1 thread(s), limit 77 s)"
    assert err[1:3] == [f"  run folder: {folder}", f"  log: {folder / 'log.txt'}"]
    assert any(re.fullmatch(r"  \| broken model: mode=ok pid=\d+", line) for line in err), out.stderr

    quiet = _invoke(["run", "broken", "density", "--seed", "2", *OPTIONS, "--quiet"])
    assert quiet.exit_code == 0 and f"  run folder: {folder}" in quiet.stderr
    assert not any(line.startswith("  | ") for line in quiet.stderr.splitlines()), quiet.stderr

    # the same options through `boom matrix`: the same plan, so the same run id and folder
    mat = _invoke(["matrix", "--models", "broken", "--props", "density", "--seeds", "2", *OPTIONS, "--no-report"])
    assert mat.exit_code == 0, mat.output
    assert re.search(r"^\[1/1\] \[broken density seed 2\] ok \(\d+\.\d s\) OOD RMSE \S+ \| elapsed \d+s, ETA 0s$",
                     mat.stdout, re.M), mat.stdout
    assert any(re.fullmatch(r"  broken/density/2 \| broken model: mode=ok pid=\d+", line)
               for line in mat.stderr.splitlines()), mat.stderr
    assert (folder / "record.json").exists() and len(list(folder.parent.iterdir())) == 1
    _check_task(json.loads((folder / "task.json").read_text()), seed=2)


def test_matrix_docker_cell_gets_every_option(models: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from boom import images

    client = FakeDockerClient({"runc": {}, "nvidia": {}})
    monkeypatch.setattr(images, "client", lambda timeout=None: client)
    monkeypatch.setattr(images, "ensure_model", lambda entry, log=None, docker_client=None: "boom-tte/broken:test")
    out = _invoke(["matrix", "--runner", "docker", "--models", "broken", "--props", "density", "--seeds", "3",
                   *OPTIONS, "--no-report"])
    assert out.exit_code == 0, out.output
    assert "runner docker" in out.stdout and "[1/1] [broken density seed 3] failed" in out.stdout  # no predictions
    kw = client.created
    assert kw["image"] == "boom-tte/broken:test" and kw["command"] == ["python", "main.py", "/task/output/task.json"]
    assert kw["mem_limit"] == kw["memswap_limit"] == "512m" and kw["nano_cpus"] == int(0.5e9)
    assert {k: kw["environment"][k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")} == \
        {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    assert kw["device_requests"] and kw["network_mode"] == "none" and kw["working_dir"] == "/opt/boom/models/broken"
    binds = {v["bind"]: (Path(k), v["mode"]) for k, v in kw["volumes"].items()}
    assert binds["/task/input"][1] == "ro" and binds["/task/output"][1] == "rw"
    folder = binds["/task/output"][0]
    task = json.loads((folder / "task.json").read_text())
    _check_task(task, seed=3)
    assert (task["input_dir"], task["output_dir"]) == ("/task/input", "/task/output")
    assert "fake container output" in (folder / "log.txt").read_text() and client.container.removed
    assert "  broken/density/3 | fake container output" in out.stderr.splitlines()


def test_matrix_slurm_cell_gets_every_option(models: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from boom.options import parse_run_args
    from boom.slurm import commands

    monkeypatch.setattr(commands, "sbatch", lambda script, args=(): "4242")
    monkeypatch.setattr(commands, "task_states", lambda job: {i: commands.TaskState(i, "PENDING") for i in range(2)})
    args = ["matrix", "--executor", "slurm", "--no-wait", "--models", "broken", "--props", "density",
            "--seeds", "4,5", *OPTIONS]
    out = _invoke(args)
    assert out.exit_code == 0, out.output
    assert "submitted 2 cell(s) as job array 4242 (1 cpu, 512 MB" in out.stdout
    (sub,) = (tmp_path / "results" / "_slurm").iterdir()
    script = (sub / "job.sh").read_text()
    assert "#SBATCH --cpus-per-task=1" in script and "#SBATCH --mem=512M" in script and "#SBATCH --gres=gpu:1" in script
    exec_line = next(line for line in script.splitlines() if line.startswith("exec "))
    import shlex

    words = shlex.split(exec_line.replace('"$seed"', "4").replace('"$model"', "broken").replace('"$prop"', "density"))
    _, _, submitted = parse_run_args(words[words.index("run") + 1:])
    _, _, given = parse_run_args(["broken", "density", "--seed", "4", *OPTIONS])
    assert submitted == given

    # Array task 0 as Slurm would start it: bash runs the script, the script runs `boom run` on row 0
    env = {**os.environ, "SLURM_ARRAY_TASK_ID": "0", "SLURM_CPUS_PER_TASK": "1"}
    proc = subprocess.run(["bash", str(sub / "job.sh")], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    row = (sub / "cells.tsv").read_text().splitlines()[1].split("\t")
    folder = Path(row[5])
    _check_task(json.loads((folder / "task.json").read_text()), seed=int(row[3]))
    record = json.loads((folder / "record.json").read_text())
    assert record["status"] == "ok" and record["run_id"] == row[4] and record["smoke"] is True

"""The Docker runner end to end: the random forest in its image gives the local runner's exact predictions,
and every way a containerised run can fail ends in a failed record with a one-line reason.

Images: a local Debian rootfs stands in for the CUDA base image and builds use an offline wheelhouse
(tests/docker_support.py); the base image is content-tagged, so it is built once per definition and reused
by later runs. Every model folder's Dockerfile is checked against the convention below; one torch model
image is built and run in tests/test_model_images.py, all of them by bench/build_model_images.py.

With CI=true these tests fail when no Docker daemon answers; elsewhere they are skipped then.
"""
from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests import docker_support
from tests.docker_support import FakeContainer, FakeDockerClient
from tests.conftest import stop_boom_midway

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "models"
SUBSET = 120


def _model_folders() -> list[Path]:
    folders = [p for p in sorted((REPO / "models").iterdir()) if (p / "model.yaml").exists() and not p.name.startswith("_")]
    return folders + [p for p in sorted(FIXTURES.iterdir()) if (p / "model.yaml").exists()]


@pytest.mark.parametrize("folder", _model_folders(), ids=lambda p: p.name)
def test_dockerfile_follows_the_convention(folder: Path) -> None:
    from boom.registry import ModelEntry
    from boom_schema import load_spec

    from boom import images

    entry = ModelEntry(load_spec(folder / "model.yaml"), folder)
    assert images.check_dockerfile(entry) == []
    torch_needed = "torch" in (folder / "requirements.txt").read_text() if (folder / "requirements.txt").exists() else False
    if torch_needed:
        assert images.model_base_kind(entry) == "base-torch", "a model that needs torch builds on boom-tte/base-torch"


def test_convention_check_catches_a_wrong_dockerfile(tmp_path: Path) -> None:
    from boom.registry import ModelEntry
    from boom_schema import load_spec

    from boom import images

    folder = tmp_path / "models" / "broken"
    folder.mkdir(parents=True)
    for f in ("model.yaml", "main.py", "requirements.txt"):
        (folder / f).write_text((FIXTURES / "broken" / f).read_text())
    (folder / "Dockerfile").write_text("FROM python:3.11\nCOPY . /app\n")
    entry = ModelEntry(load_spec(folder / "model.yaml"), folder)
    assert images.check_dockerfile(entry)


@pytest.fixture(scope="session")
def docker_ready(prepared) -> dict:
    docker_support.require_daemon()
    tag = docker_support.ensure_base_image("base")
    return {**prepared, "base": tag}


@pytest.fixture
def fixture_models(monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BOOM_MODELS_DIR", str(FIXTURES))
    return FIXTURES


def _run(model: str, runner, prop: str = "density", **kw):
    from boom.options import RunOptions
    from boom.orchestrate import run

    kw.setdefault("subset", SUBSET)
    return run(model, prop, runner, RunOptions(threads=1, force=True, **kw))


def _leftover_containers(run_id: str) -> list:
    """Containers of this run still present (others may belong to concurrent runs of other processes)."""
    import docker

    return docker.from_env().containers.list(all=True, filters={"label": f"boom.run_id={run_id}"})


def test_rf_in_docker_matches_local(docker_ready) -> None:
    from boom.runners.docker import DockerRunner
    from boom.runners.local import LocalRunner

    local = _run("rf", LocalRunner(), smoke=True)
    assert local.record.status.value == "ok", local.record.reason
    # the same run id (same inputs), so move the local folder's files aside by forcing a fresh run
    local_preds = (local.folder / "predictions.csv").read_text()
    local_scores = local.scores
    dock = _run("rf", DockerRunner(), smoke=True)
    log = (dock.folder / "log.txt").read_text()
    assert dock.record.status.value == "ok", f"{dock.record.reason}\n{log[-3000:]}"
    assert dock.record.runner == "docker"
    assert (dock.folder / "predictions.csv").read_text() == local_preds  # RF is seeded: identical predictions
    assert dock.scores.ood.rmse == local_scores.ood.rmse and dock.scores.id.rmse == local_scores.id.rmse
    # the task the container saw: container paths; output files belong to the invoking user
    task_json = (dock.folder / "task.json").read_text()
    assert '"/task/input"' in task_json and '"/task/output"' in task_json
    for f in ("predictions.csv", "model_report.json", "task.json", "log.txt"):
        assert (dock.folder / f).stat().st_uid == os.getuid(), f
    assert "network=none" in log and "docker run boom-tte/rf:" in log
    assert _leftover_containers(dock.record.run_id) == []


def test_container_is_isolated(docker_ready, fixture_models) -> None:
    """Read-only input, no network interface but lo, and not root inside."""
    from boom.runners.docker import DockerRunner

    out = _run("broken", DockerRunner(), overrides={"mode": "probe"})
    log = (out.folder / "log.txt").read_text()
    assert out.record.status.value == "ok", f"{out.record.reason}\n{log[-2000:]}"
    assert "probe: input read-only" in log
    assert "probe: interfaces ['lo']" in log
    assert "probe: uid 0" not in log and "probe: uid " in log


FAILURES = [
    # mode, expected status, a phrase of the one-line reason
    ("crash", "failed", "deliberate crash"),
    ("exit3", "failed", "exited with status 3"),
    ("nan", "failed", "invalid predictions"),
    ("bad_ids", "failed", "invalid predictions"),
    ("partial", "failed", "invalid predictions"),
    ("missing", "failed", "invalid predictions"),
    ("oom", "failed", "out of memory"),
]


@pytest.mark.parametrize("mode,status,phrase", FAILURES, ids=[f[0] for f in FAILURES])
def test_failure_outcomes_are_recorded(docker_ready, fixture_models, mode: str, status: str, phrase: str) -> None:
    from boom.runners.docker import DockerRunner

    out = _run("broken", DockerRunner(), overrides={"mode": mode})
    rec = out.record
    assert rec.status.value == status, rec.reason
    assert phrase in rec.reason and "\n" not in rec.reason
    assert (out.folder / "record.json").exists()
    assert _leftover_containers(rec.run_id) == []


def test_timeout_is_recorded(docker_ready, fixture_models) -> None:
    from boom.runners.docker import DockerRunner

    out = _run("broken", DockerRunner(), overrides={"mode": "sleep"}, timeout_s=8)
    assert out.record.status.value == "timeout", out.record.reason
    assert "time limit of 8 s" in out.record.reason
    assert out.record.wall_s < 60
    assert _leftover_containers(out.record.run_id) == []


def test_image_build_failure_is_recorded(docker_ready, fixture_models) -> None:
    from boom.runners.docker import DockerRunner

    out = _run("unbuildable", DockerRunner())
    assert out.record.status.value == "failed"
    assert out.record.reason.startswith("image build failed for boom-tte/unbuildable:"), out.record.reason
    assert "\n" not in out.record.reason
    assert "boom-tte-no-such-package-xyz" in (out.folder / "log.txt").read_text()


def test_daemon_unreachable_is_recorded(prepared, fixture_models, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from boom.runners import select
    from boom.runners.docker import DockerRunner
    from boom.runners.local import LocalRunner

    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-daemon.sock")
    out = _run("broken", DockerRunner())
    assert out.record.status.value == "failed"
    assert out.record.reason.startswith("Docker daemon unreachable at unix://"), out.record.reason
    assert isinstance(select("auto"), LocalRunner)  # auto falls back to the local runner


def test_matrix_goes_on_after_failures_and_resumes(docker_ready, fixture_models) -> None:
    from boom import matrix
    from boom.options import RunOptions
    from boom.runners.docker import DockerRunner

    cells = matrix.cells(["broken", "unbuildable"], ["density", "hof"])
    assert len(cells) == 4
    first = matrix.run_matrix(cells, DockerRunner(), RunOptions(subset=SUBSET, threads=1), jobs=2, echo=lambda s: None)
    by = {(r.cell.model, r.cell.prop): r for r in first}
    assert [by[("broken", p)].status for p in ("density", "hof")] == ["ok", "ok"]
    assert all(by[("unbuildable", p)].status == "failed" for p in ("density", "hof"))
    assert all(r.folder and (Path(r.folder) / "record.json").exists() for r in first)
    again = matrix.run_matrix(cells, DockerRunner(), RunOptions(subset=SUBSET, threads=1), echo=lambda s: None)
    assert all(r.skipped for r in again if r.cell.model == "broken")
    assert "4 cells: 2 ok (0 already done), 2 failed" in matrix.summary(first)


def test_models_check_command(docker_ready, fixture_models) -> None:
    from click.testing import CliRunner

    from boom.cli import main

    ok = CliRunner().invoke(main, ["models", "check", "broken", "--runner", "docker", "--subset", "80"])
    assert ok.exit_code == 0, ok.output
    for line in ("spec: ok", "dockerfile: ok (models/_base/model.Dockerfile on boom-tte/base)", "image: ok (boom-tte/broken:", "smoke run: ok (docker"):
        assert line in ok.output
    bad = CliRunner().invoke(main, ["models", "check", "unbuildable", "--runner", "docker"])
    assert bad.exit_code == 1 and "image build failed" in bad.output


@pytest.mark.parametrize("device,runtimes,wants_gpu", [
    ("cuda", {"runc": {}, "nvidia": {}}, True),
    ("cuda", {"runc": {}}, False),
    ("cpu", {"runc": {}, "nvidia": {}}, False),
])
def test_gpu_request_only_for_cuda_on_a_gpu_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, device: str,
                                                 runtimes: dict, wants_gpu: bool) -> None:
    from boom_schema import Task
    from boom import images, registry
    from boom.runners import docker as docker_runner

    monkeypatch.setenv("BOOM_MODELS_DIR", str(FIXTURES))
    monkeypatch.setattr(images, "ensure_model", lambda entry, log=None, docker_client=None: "boom-tte/broken:test")
    monkeypatch.setattr(docker_runner.shutil, "which", lambda name: None)
    entry = registry.get("broken")
    run_dir = tmp_path / "run"
    input_dir = tmp_path / "input"
    run_dir.mkdir()
    input_dir.mkdir()
    task = Task(run_id="r1", model="broken", dataset="10k_csd", property="density", unit="g/cm^3", readout="mean",
                input_dir=str(input_dir), output_dir=str(run_dir), device=device, threads=2)
    client = FakeDockerClient(runtimes)
    runner = docker_runner.DockerRunner(docker_client=client, memory_gb=1.5)
    ex = runner.execute(entry, task, run_dir, run_dir / "log.txt", timeout_s=30)
    assert ex.returncode == 0 and not ex.timed_out and not ex.oom_killed
    kw = client.created
    assert bool(kw["device_requests"]) is wants_gpu
    if wants_gpu:
        assert kw["device_requests"][0]["Capabilities"] == [["gpu"]]
    assert kw["network_mode"] == "none"
    assert kw["mem_limit"] == kw["memswap_limit"] == "1536m"
    assert kw["nano_cpus"] == int(min(2, os.cpu_count() or 1) * 1e9)
    assert kw["volumes"][str(input_dir.resolve())] == {"bind": "/task/input", "mode": "ro"}
    assert kw["volumes"][str(run_dir.resolve())] == {"bind": "/task/output", "mode": "rw"}
    assert kw["user"] != "0:0" and not kw["user"].startswith("0:")
    assert client.container.removed
    assert FakeContainer.OUTPUT in (run_dir / "log.txt").read_text()


def test_stopping_boom_removes_the_container(docker_ready, tmp_path: Path) -> None:
    """A container runs in the daemon, not under boom: stopping boom must remove it, not leave it running."""
    env = {**os.environ, "BOOM_MODELS_DIR": str(FIXTURES), "BOOM_RESULTS_DIR": str(tmp_path / "results")}
    code, log = stop_boom_midway(["run", "broken", "density", "--subset", "60", "--set", "mode=sleep",
                                  "--runner", "docker"], env, tmp_path / "results", signal.SIGTERM)
    assert code != 0
    assert "the container is removed" in log
    left = subprocess.run(["docker", "ps", "-aq", "--filter", "label=boom.model=broken"], capture_output=True,
                          text=True, check=True).stdout.split()
    assert left == [], f"containers left behind: {left}"


def test_docker_and_apptainer_share_one_container_plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Mounts, environment, working folder and command come from boom.runners.container for both runners."""
    from boom_schema import Task
    from boom import images, registry
    from boom.runners import container
    from boom.runners import docker as docker_runner
    from boom.runners.apptainer import ApptainerRunner

    monkeypatch.setenv("BOOM_MODELS_DIR", str(FIXTURES))
    monkeypatch.setenv("BOOM_FEATURE_CACHE", str(tmp_path / "fc"))
    monkeypatch.setattr(images, "ensure_model", lambda entry, log=None, docker_client=None: "boom-tte/broken:test")
    entry = registry.get("broken")
    run_dir, input_dir = tmp_path / "run", tmp_path / "input"
    run_dir.mkdir()
    input_dir.mkdir()
    task = Task(run_id="r1", model="broken", dataset="10k_csd", property="density", unit="g/cm^3", readout="mean",
                input_dir=str(input_dir), output_dir=str(run_dir), device="cpu", threads=3)
    plan = container.plan(entry, task, run_dir)
    assert [(m.target, m.read_only) for m in plan.mounts] == [("/task/input", True), ("/task/output", False),
                                                             ("/task/feature-cache", True)]
    assert plan.env["OMP_NUM_THREADS"] == plan.env["OPENBLAS_NUM_THREADS"] == "3" and plan.env["HOME"] == "/tmp"

    client = FakeDockerClient({"runc": {}})
    docker_runner.DockerRunner(docker_client=client).execute(entry, task, run_dir, run_dir / "log.txt", timeout_s=30)
    kw = client.created
    assert kw["volumes"] == {m.host: {"bind": m.target, "mode": "ro" if m.read_only else "rw"} for m in plan.mounts}
    assert kw["environment"] == plan.env and kw["working_dir"] == plan.workdir and kw["command"] == list(plan.command)

    cmd = ApptainerRunner(executable="apptainer", images=tmp_path).command(entry, task, run_dir, tmp_path / "b.sif")
    binds = [cmd[i + 1] for i, word in enumerate(cmd) if word == "--bind"]
    assert binds == [f"{m.host}:{m.target}" + (":ro" if m.read_only else "") for m in plan.mounts]
    envs = dict(cmd[i + 1].split("=", 1) for i, word in enumerate(cmd) if word == "--env")
    assert envs == plan.env and cmd[cmd.index("--pwd") + 1] == plan.workdir
    assert cmd[-3:] == list(plan.command)
    for runner in (docker_runner.DockerRunner(docker_client=client), ApptainerRunner(executable="apptainer")):
        view = runner.task_view(task)
        assert (view.input_dir, view.output_dir) == ("/task/input", "/task/output")

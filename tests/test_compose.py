"""compose.yaml is generated from models/ and committed: this fails when it is stale, and checks its shape."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]


def test_committed_compose_is_in_sync_with_models() -> None:
    from boom import compose

    assert (REPO / "compose.yaml").exists(), "compose.yaml missing: run `boom compose` and commit it"
    assert (REPO / "compose.yaml").read_text() == compose.generate(REPO / "models"), (
        "compose.yaml is stale: run `boom compose` (or `make compose`) and commit it")


def test_services_order_and_gpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from boom import compose

    models = tmp_path / "models"
    shutil.copytree(REPO / "tests" / "fixtures" / "models" / "broken", models / "broken")
    shutil.copytree(REPO / "tests" / "fixtures" / "models" / "broken", models / "gpuonly")
    spec = (models / "gpuonly" / "model.yaml").read_text().replace("name: broken", "name: gpuonly")
    (models / "gpuonly" / "model.yaml").write_text(spec.replace('gpu: "no"', "gpu: required"))
    monkeypatch.setenv("BOOM_MODELS_DIR", str(models))
    doc = yaml.safe_load(compose.generate())
    services = doc["services"]
    assert set(services) == {"base", "orchestrator", "prepare", "broken", "gpuonly", "report"}
    for model in ("broken", "gpuonly"):
        svc = services[model]
        assert f"boom matrix --models {model} --runner docker" in svc["command"][0]
        assert svc["depends_on"] == {"prepare": {"condition": "service_completed_successfully"}}
        assert "/var/run/docker.sock:/var/run/docker.sock" in svc["volumes"]
        assert "${PWD}:${PWD}" in svc["volumes"]  # same paths inside and out: the runner's bind mounts work
    assert services["report"]["depends_on"] == {
        m: {"condition": "service_completed_successfully"} for m in ("broken", "gpuonly")}
    assert services["report"]["command"] == ["boom report"]
    assert "deploy" not in services["broken"]
    devices = services["gpuonly"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]
    assert "--device cuda" in services["gpuonly"]["command"][0]


def test_check_command_exits_1_when_stale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from boom.cli import main

    monkeypatch.setenv("BOOM_HOME", str(tmp_path))
    monkeypatch.setenv("BOOM_MODELS_DIR", str(REPO / "models"))
    runner = CliRunner()
    stale = runner.invoke(main, ["compose", "--check"])
    assert stale.exit_code == 1 and "stale" in stale.output
    assert runner.invoke(main, ["compose"]).exit_code == 0
    assert (tmp_path / "compose.yaml").exists()
    fresh = runner.invoke(main, ["compose", "--check"])
    assert fresh.exit_code == 0, fresh.output
    (tmp_path / "compose.yaml").write_text((tmp_path / "compose.yaml").read_text() + "# edited by hand\n")
    assert runner.invoke(main, ["compose", "--check"]).exit_code == 1


@pytest.mark.skipif(shutil.which("docker-compose") is None and not os.environ.get("CI"),
                    reason="docker-compose not installed")
def test_docker_compose_accepts_the_file() -> None:
    """Debian's docker-compose 1.29 parses and validates the committed file."""
    env = {**os.environ, "PWD": str(REPO)}
    proc = subprocess.run(["docker-compose", "-f", str(REPO / "compose.yaml"), "config", "-q"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr

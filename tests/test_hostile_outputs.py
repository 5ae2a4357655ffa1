"""A model cannot reach outside its run folder: planted links, FIFOs, devices and huge files fail the run.

The fixture model ``tests/fixtures/models/hostile`` plants one thing per ``mode`` (and otherwise writes valid
predictions); each case runs under the local runner and in Docker (a local base image, no registry:
tests/docker_support.py).  A "victim" file outside the run folder stands for any host file the orchestrator's
user may write; it must be byte-identical afterwards.  With CI=true the Docker cases fail when no daemon
answers; elsewhere they are skipped then.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests import docker_support

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "models"
SUBSET = 60
VICTIM_TEXT = "a host file outside the run folder: must stay as it is\n"

CASES = [
    # mode, extra --set values, phrase of the one-line reason
    ("link_parity", {}, "parity.png was a symbolic link (removed)"),
    ("link_record", {}, "record.json was a symbolic link (removed)"),
    ("link_scores", {}, "scores.json was a symbolic link (removed)"),
    ("link_tmp", {}, "record.json.part was a symbolic link (removed)"),
    ("link_log", {}, "log.txt was a symbolic link (removed)"),
    ("dir_parity", {}, "parity.png was a directory (removed"),
    ("link_predictions", {}, "predictions.csv was a symbolic link (removed)"),
    ("fifo_predictions", {}, "predictions.csv was a FIFO (removed)"),
    ("device_predictions", {}, "predictions.csv was a symbolic link (removed)"),
    ("huge_predictions", {"size_mb": "50"}, "predictions.csv is 50 MiB, over its limit of"),
    ("big_report", {"size_mb": "6"}, "model_report.json is 6 MiB, over its limit of 4 MiB"),
    ("big_folder", {"size_mb": "600"}, "run folder holds 600 MiB, over its limit of 512 MiB (resources.disk_gb: 0.5"),
]


@pytest.fixture
def hostile_env(prepared, monkeypatch: pytest.MonkeyPatch) -> dict:
    monkeypatch.setenv("BOOM_MODELS_DIR", str(FIXTURES))
    return prepared


@pytest.fixture(scope="module")
def docker_base(prepared) -> str:
    docker_support.require_daemon()
    return docker_support.ensure_base_image("base")


def _runner(name: str):
    if name == "docker":
        from boom.runners.docker import DockerRunner

        return DockerRunner()
    from boom.runners.local import LocalRunner

    return LocalRunner()


def _run(runner_name: str, mode: str, victim: Path, **sets: str):
    from boom.options import RunOptions
    from boom.orchestrate import run

    overrides = {"mode": mode, "target": str(victim), **sets}
    return run("hostile", "density", _runner(runner_name), RunOptions(overrides=overrides, subset=SUBSET, threads=1, force=True))


def _assert_clean(folder: Path) -> None:
    """Only regular files and folders are left, and the orchestrator's files are its own regular files."""
    for root, dirs, files in os.walk(folder):
        for name in (*dirs, *files):
            mode = os.lstat(Path(root) / name).st_mode
            assert stat.S_ISREG(mode) or stat.S_ISDIR(mode), f"{name} left in the run folder: {oct(mode)}"
    assert stat.S_ISREG(os.lstat(folder / "record.json").st_mode)


def _check_case(runner_name: str, tmp_path: Path, mode: str, sets: dict, phrase: str) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text(VICTIM_TEXT)
    out = _run(runner_name, mode, victim, **sets)
    rec = out.record
    assert rec.status.value == "failed", f"{mode}: {rec.status.value} {rec.reason}"
    assert phrase in rec.reason, rec.reason
    assert "\n" not in rec.reason
    assert VICTIM_TEXT not in rec.reason  # a host file's content never leaks into a record
    assert victim.read_text() == VICTIM_TEXT and not victim.is_symlink(), f"{mode} wrote outside the run folder"
    _assert_clean(out.folder)
    from boom import results

    assert results.read_record(out.folder) == rec  # what was written is the record, not a link's target


@pytest.mark.parametrize("mode,sets,phrase", CASES, ids=[c[0] for c in CASES])
def test_hostile_local(hostile_env, tmp_path: Path, mode: str, sets: dict, phrase: str) -> None:
    _check_case("local", tmp_path, mode, sets, phrase)


@pytest.mark.parametrize("mode,sets,phrase", CASES, ids=[c[0] for c in CASES])
def test_hostile_docker(docker_base, hostile_env, tmp_path: Path, mode: str, sets: dict, phrase: str) -> None:
    _check_case("docker", tmp_path, mode, sets, phrase)


@pytest.mark.parametrize("runner_name", ["local", "docker"])
def test_well_behaved_control_passes(hostile_env, tmp_path: Path, runner_name: str, request) -> None:
    """The fixture's ``ok`` mode scores normally: the failures above come from what each mode plants."""
    if runner_name == "docker":
        request.getfixturevalue("docker_base")
    out = _run(runner_name, "ok", tmp_path / "unused")
    assert out.record.status.value == "ok", out.record.reason
    for name in ("record.json", "scores.json", "parity.png"):
        assert stat.S_ISREG(os.lstat(out.folder / name).st_mode)


@pytest.mark.parametrize("runner_name", ["local", "docker"])
def test_folder_filling_model_is_stopped_while_running(hostile_env, tmp_path: Path, runner_name: str, request) -> None:
    """A model past resources.disk_gb is stopped by the runner's watch, not left to fill the disk until it exits."""
    if runner_name == "docker":
        request.getfixturevalue("docker_base")
    out = _run(runner_name, "big_folder", tmp_path / "unused", size_mb="600", sleep_s="120")
    assert out.record.status.value == "failed"
    assert "over its limit of 512 MiB" in out.record.reason and "the model was stopped" in out.record.reason
    log = (out.folder / "log.txt").read_text()
    assert "hostile model: mode=big_folder" in log  # it started ...
    assert "hostile model: planted big_folder" not in log  # ... and was killed during its sleep, before this line


@pytest.mark.parametrize("runner_name", ["local", "docker"])
def test_oversized_log_is_cut_with_a_note(hostile_env, tmp_path: Path, runner_name: str, request,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from boom_schema import limits

    if runner_name == "docker":
        request.getfixturevalue("docker_base")
    monkeypatch.setattr(limits, "LOG_MAX_BYTES", 1 << 20)
    out = _run(runner_name, "huge_log", tmp_path / "unused", size_mb="3")
    assert out.record.status.value == "ok", out.record.reason
    log = (out.folder / "log.txt").read_bytes()
    assert len(log) < (1 << 20) + 1000
    assert b"[boom] log.txt was 3" in log and b"over its limit of 1 MiB" in log
    assert b"hostile model: planted huge_log" in log  # the end of the log is kept


# -- boom.runfiles on its own ----------------------------------------------------------------------------


def test_reads_refuse_links_fifos_devices_and_oversized_files(tmp_path: Path) -> None:
    from boom import runfiles

    host = tmp_path / "host.txt"
    host.write_text("secret")
    (tmp_path / "link").symlink_to(host)
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "big").write_bytes(b"x" * 2000)
    (tmp_path / "fine").write_bytes(b"hello")
    os.link(host, tmp_path / "hard")
    for name, phrase in (("link", "a symbolic link"), ("fifo", "a FIFO"), ("big", "over its limit of 1000 B"),
                         ("hard", "hard link")):
        with pytest.raises(runfiles.UnsafeEntry, match=phrase):
            runfiles.read_bytes(tmp_path / name, 1000)
    with pytest.raises(runfiles.UnsafeEntry, match="a device"):
        runfiles.read_bytes(Path("/dev/zero"), 1000)
    assert runfiles.read_bytes(tmp_path / "fine", 1000) == b"hello"
    assert runfiles.read_bytes(tmp_path / "absent", 1000) is None
    assert runfiles.read_tail(tmp_path / "fifo", 10) is None  # a log that is a FIFO never blocks a reader
    assert runfiles.is_regular(tmp_path / "fine")  # what the report asks before it links a run's parity.png
    assert not any(runfiles.is_regular(tmp_path / name) for name in ("link", "fifo", "hard", "absent"))


def test_writes_replace_whatever_stands_at_the_name(tmp_path: Path) -> None:
    from boom import runfiles

    host = tmp_path / "host.txt"
    host.write_text("host")
    run = tmp_path / "run"
    run.mkdir()
    (run / "record.json").symlink_to(host)
    (run / "parity.png").mkdir()
    (run / "parity.png" / "inside").symlink_to(host)
    runfiles.write_atomic(run / "record.json", "{}")
    runfiles.write_atomic(run / "parity.png", b"png")
    assert host.read_text() == "host"
    assert (run / "record.json").read_text() == "{}" and not (run / "record.json").is_symlink()
    assert (run / "parity.png").read_bytes() == b"png"
    (run / "log.txt").symlink_to(host)
    runfiles.append_text(run / "log.txt", "note\n")
    assert host.read_text() == "host" and (run / "log.txt").read_text() == "note\n"
    assert sorted(p.name for p in run.iterdir()) == ["log.txt", "parity.png", "record.json"]  # no temp files left


def test_archive_never_moves_files_through_a_planted_previous_link(tmp_path: Path) -> None:
    from boom import results

    outside = tmp_path / "outside"
    outside.mkdir()
    run = tmp_path / "run"
    run.mkdir()
    (run / "predictions.csv").write_text("x")
    (run / "previous").symlink_to(outside)
    results.archive_previous(run)
    assert list(outside.iterdir()) == []
    assert (run / "previous").is_dir() and not (run / "previous").is_symlink()
    attempts = list((run / "previous").iterdir())  # the earlier attempt moved into a real folder
    assert len(attempts) == 1 and (attempts[0] / "predictions.csv").read_text() == "x"
    assert not (run / "predictions.csv").exists()

"""Live feedback in its non-interactive form (CI, Slurm, a pipe): plain progress lines, a run's log followed while
it grows, the matrix's ETA arithmetic, and the data preparation's steps.  (What `boom run` and `boom matrix` print
around a real run is checked in tests/test_run_options.py.)"""
from __future__ import annotations

import io
import os
import re
import time
from pathlib import Path

import pytest

from boom import progress


def test_steps_are_plain_lines_off_a_terminal() -> None:
    out = io.StringIO()
    assert list(progress.steps(["a", "b"], 2, "prep", stream=out)) == ["a", "b"]
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and re.fullmatch(r"prep: 1/2 a \(\d+\.\d s\)", lines[0]) and lines[1].startswith("prep: 2/2 b (")
    assert not progress.interactive(out)


def test_eta_and_clock() -> None:
    assert progress.eta(0, 4, 10.0) is None and progress.clock(None) == "?"
    assert progress.eta(1, 4, 10.0) == 30.0 and progress.eta(4, 4, 10.0) == 0.0
    assert [progress.clock(s) for s in (0.4, 59, 61, 3600 + 7 * 60 + 5)] == ["0s", "59s", "1m01s", "1h07m"]


def _follow(path: Path, writes: list[bytes], **kw) -> list[str]:
    seen: list[str] = []
    with progress.LogFollower(path, seen.append, prefix="> ", poll_s=0.02, **kw):
        for chunk in writes:
            with open(path, "ab") as f:
                f.write(chunk)
            time.sleep(0.1)
    return seen


def test_follower_echoes_lines_as_they_are_written(tmp_path: Path) -> None:
    log = tmp_path / "log.txt"  # created by the first write, after the follower started
    seen = _follow(log, [b"epoch 1 loss 0.5\nepoch 2 ", b"loss 0.4\n", b"\n   \nbar 10%\rbar 100%\n", b"no newline"])
    assert seen == ["> epoch 1 loss 0.5", "> epoch 2 loss 0.4", "> bar 100%", "> no newline"]


def test_follower_caps_what_it_echoes(tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    seen = _follow(log, [b"x" * 30 + b"\n", b"y" * 30 + b"\n"], max_bytes=40)
    assert seen[0] == "> " + "x" * 30 and seen[-1] == f"> [boom] the rest of the log is in {log}"
    assert not any("y" * 30 in line for line in seen)


@pytest.mark.parametrize("kind", ["fifo", "symlink"])
def test_follower_ignores_a_planted_log(tmp_path: Path, kind: str) -> None:
    """The run folder is the model's: a FIFO (would block a reader) or a link to another file is not followed."""
    log = tmp_path / "log.txt"
    if kind == "fifo":
        os.mkfifo(log)
    else:
        secret = tmp_path / "secret"
        secret.write_text("not yours\n")
        log.symlink_to(secret)
    seen: list[str] = []
    with progress.LogFollower(log, seen.append, poll_s=0.02):
        time.sleep(0.2)
    assert seen == []


def test_data_preparation_prints_its_steps(boom_env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture) -> None:
    from boom.data.prepare import dataset_properties, prepare

    monkeypatch.setenv("BOOM_DATA_DIR", str(tmp_path / "data"))
    prepare("10k_csd")
    lines = capsys.readouterr().err.splitlines()
    props = dataset_properties("10k_csd")
    steps = [line for line in lines if line.startswith("boom data prepare 10k_csd: KDE split: ")]
    assert [re.sub(r" \(\d+\.\d s\)$", "", s) for s in steps] == [
        f"boom data prepare 10k_csd: KDE split: {k}/{len(props)} {p}" for k, p in enumerate(props, 1)]
    prepare("10k_csd")  # current: nothing to do, nothing printed
    assert "KDE split" not in capsys.readouterr().err

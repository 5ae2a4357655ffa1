"""Shared fixtures: an isolated data and results tree per test session, and a smoke-run helper.

The LLNL CSVs come from BOOM_RAW_DIR (CI points it at ../shared/data/llnl-chno-10k); results and
prepared data go to a temporary folder so tests never touch a user's results.
"""
from __future__ import annotations

import importlib.util
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_RAW = REPO.parent / "shared" / "data" / "llnl-chno-10k"
# SMILES with the cases a tokenizer must get right: nitro groups, charged atoms, stereo, aromatic N-H
SAMPLE_SMILES = ["CCO", "c1ccccc1N(=O)=O", "CC[N+](=O)[O-]", "C#N", "OC1CC1F", "CC(=O)N[C@@H](C)C(=O)O", "c1cc[nH]c1"]
_MODEL_MODULES: dict[str, dict[str, ModuleType]] = {}  # model folder -> its modules, by sys.modules name


def model_module(model: str, name: str = "main") -> ModuleType:
    """Import ``models/<model>/<name>.py`` the way its entry point sees it (its folder first on sys.path).

    Model folders hold modules with generic names (``network``, ``etnet``...), so the folder's modules are
    kept per model and taken out of ``sys.modules`` again: another folder's ``network`` is never found in
    their place, and every test of one model shares one instance of each module (same classes).
    ``main`` is registered as ``<model>_main``.
    """
    folder = REPO / "models" / model
    key = f"{model.replace('-', '_')}_main" if name == "main" else name
    own = _MODEL_MODULES.setdefault(model, {})
    if key in own:
        return own[key]
    names = {p.stem for p in folder.glob("*.py")} | set(own) | {key}
    hidden = {k: sys.modules.pop(k) for k in names if k in sys.modules}  # another folder's namesakes
    sys.modules.update(own)
    sys.path.insert(0, str(folder))
    try:
        spec = importlib.util.spec_from_file_location(key, folder / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(folder))
        for k in names:
            if k in sys.modules:  # <model>_main stays registered: its name is unique
                own[k] = sys.modules[k] if k == key else sys.modules.pop(k)
        sys.modules.update({k: m for k, m in hidden.items() if m is not own.get(k)})
    return own[key]


def param_getter(model: str, values: dict):
    """The ``param(name)`` callable an entry point's Context offers: ``models/<model>/model.yaml``'s defaults
    updated with ``values`` (already typed, like the task's merged hyperparameters), read as strictly."""
    from boom_kit.params import lookup, spec_defaults

    defaults = spec_defaults(REPO / "models" / model / "main.py")
    unknown = set(values) - set(defaults)
    assert not unknown, f"{model}: {sorted(unknown)} not declared in its model.yaml"
    merged = {**defaults, **values}
    return lambda name: lookup(merged, defaults, name, model)


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("BOOM_RAW_DIR", str(SHARED_RAW))
    os.environ.setdefault("BOOM_HOME", str(REPO))


@pytest.fixture(scope="session")
def boom_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Point BOOM_DATA_DIR / BOOM_RESULTS_DIR at a session-wide temporary tree.

    ``BOOM_TEST_DATA_DIR``, when set, is the prepared-data folder instead: the mutation engine (bench/mutation.py)
    prepares the datasets once and every mutant's test session reuses them (``prepare`` is idempotent and
    recognises a current folder from file digests), instead of preparing qm9 again per mutant."""
    root = tmp_path_factory.mktemp("boom")
    data = Path(os.environ["BOOM_TEST_DATA_DIR"]) if os.environ.get("BOOM_TEST_DATA_DIR") else root / "data"
    os.environ["BOOM_DATA_DIR"] = str(data)
    os.environ["BOOM_RESULTS_DIR"] = str(root / "results")
    return {"root": root, "data": data, "results": root / "results"}


@pytest.fixture(scope="session")
def prepared(boom_env: dict[str, Path]) -> dict[str, Path]:
    """Both datasets prepared once per session (about 15 s)."""
    from boom.data.prepare import prepare

    prepare("10k_csd")
    prepare("qm9")
    return boom_env


def smoke_run(model: str, prop: str, subset: int = 60, sets: dict[str, str] | None = None, seed: int = 0):
    """Run a model's smoke configuration through the local runner and check the outcome is usable."""
    from boom.options import RunOptions
    from boom.orchestrate import run
    from boom.runners.local import LocalRunner

    outcome = run(model, prop, LocalRunner(), RunOptions(seeds=(seed,), overrides=sets or {}, subset=subset,
                                                         smoke=True, threads=1, force=True))
    log = (outcome.folder / "log.txt").read_text() if (outcome.folder / "log.txt").exists() else ""
    assert outcome.record.status.value == "ok", f"{model}/{prop}: {outcome.record.reason}\n{log[-3000:]}"
    s = outcome.scores
    assert s is not None
    for split in (s.id, s.ood):
        assert split.n > 0
        assert math.isfinite(split.rmse) and math.isfinite(split.mae) and math.isfinite(split.r2)
    return outcome


def stop_boom_midway(args: list[str], env: dict[str, str], results_dir: Path, sig: int = signal.SIGTERM,
                     patience_s: float = 300) -> tuple[int, str]:
    """Start ``boom <args>`` (a run of the fixture model in ``mode=sleep``), send it ``sig`` once the model
    has printed its pid, and return boom's exit status and the run's log.  Waiting is bounded by
    ``patience_s`` (image builds included) so a broken stop fails the test instead of hanging it."""
    proc = subprocess.Popen([sys.executable, "-m", "boom.cli", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + patience_s
    log_path = None
    while time.monotonic() < deadline and proc.poll() is None:
        logs = sorted(results_dir.rglob("log.txt"))
        if logs and re.search(r"pid=\d+", logs[-1].read_text(errors="replace")):
            log_path = logs[-1]
            break
        time.sleep(0.2)
    assert log_path is not None, f"the model never started: {proc.stdout.read() if proc.poll() is not None else ''}"
    proc.send_signal(sig)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("boom did not stop within 60 s of the signal")
    return proc.returncode, log_path.read_text(errors="replace")

"""Shared fixtures: an isolated data and results tree per test session, and a smoke-run helper.

The LLNL CSVs come from BOOM_RAW_DIR (CI points it at ../shared/data/llnl-chno-10k); results and
prepared data go to a temporary folder so tests never touch a user's results.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_RAW = REPO.parent / "shared" / "data" / "llnl-chno-10k"


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("BOOM_RAW_DIR", str(SHARED_RAW))
    os.environ.setdefault("BOOM_HOME", str(REPO))


@pytest.fixture(scope="session")
def boom_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Point BOOM_DATA_DIR / BOOM_RESULTS_DIR at a session-wide temporary tree."""
    root = tmp_path_factory.mktemp("boom")
    os.environ["BOOM_DATA_DIR"] = str(root / "data")
    os.environ["BOOM_RESULTS_DIR"] = str(root / "results")
    return {"root": root, "data": root / "data", "results": root / "results"}


@pytest.fixture(scope="session")
def prepared(boom_env: dict[str, Path]) -> dict[str, Path]:
    """Both datasets prepared once per session (about 15 s)."""
    from boom.data.prepare import prepare

    prepare("10k_csd")
    prepare("qm9")
    return boom_env


def smoke_run(model: str, prop: str, subset: int = 60, sets: dict[str, str] | None = None, seed: int = 0):
    """Run a model's smoke configuration through the local runner and check the outcome is usable."""
    from boom.orchestrate import run
    from boom.runners.local import LocalRunner

    outcome = run(model, prop, LocalRunner(), seed=seed, overrides=sets or {}, subset=subset, smoke=True,
                  threads=1, force=True)
    log = (outcome.folder / "log.txt").read_text() if (outcome.folder / "log.txt").exists() else ""
    assert outcome.record.status.value == "ok", f"{model}/{prop}: {outcome.record.reason}\n{log[-3000:]}"
    s = outcome.scores
    assert s is not None
    for split in (s.id, s.ood):
        assert split.n > 0
        assert math.isfinite(split.rmse) and math.isfinite(split.mae) and math.isfinite(split.r2)
    return outcome

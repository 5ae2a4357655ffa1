"""Where things live: repository, prepared data, raw data, results, models.

Every location can be moved with an environment variable so that CI, containers and users with a
different layout never depend on the working directory (the BOOM reference resolved paths relative to
it and broke when run from elsewhere).
"""
from __future__ import annotations

import os
from pathlib import Path


def repo_root() -> Path:
    """``BOOM_HOME``, else the checkout this package was installed from (editable install)."""
    env = os.environ.get("BOOM_HOME")
    if env:
        return Path(env).resolve()
    return Path(__file__).resolve().parents[2]


def data_dir() -> Path:
    """Prepared datasets and splits (``BOOM_DATA_DIR``, default ``<repo>/data``)."""
    return Path(os.environ.get("BOOM_DATA_DIR") or repo_root() / "data").resolve()


def raw_dir() -> Path | None:
    """Folder holding the LLNL CHNO-10k CSVs (``BOOM_RAW_DIR``), if the user set one."""
    env = os.environ.get("BOOM_RAW_DIR")
    return Path(env).resolve() if env else None


def results_dir() -> Path:
    """Run folders and leaderboards (``BOOM_RESULTS_DIR``, default ``<repo>/results``)."""
    return Path(os.environ.get("BOOM_RESULTS_DIR") or repo_root() / "results").resolve()


def models_dir() -> Path:
    """Model folders (``BOOM_MODELS_DIR``, default ``<repo>/models``)."""
    return Path(os.environ.get("BOOM_MODELS_DIR") or repo_root() / "models").resolve()

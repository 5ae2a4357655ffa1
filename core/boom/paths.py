"""Where things live: repository, prepared data, raw data, results, models.

Every location can be moved with an environment variable so that CI, containers and users with a
different layout never depend on the working directory (the BOOM reference resolved paths relative to
it and broke when run from elsewhere).
"""
from __future__ import annotations

import os
from pathlib import Path


class PathsError(RuntimeError):
    """No checkout or models folder where boom looked; the message says which variable to set."""


def repo_root() -> Path:
    """``BOOM_HOME``, else the checkout this package was installed from (editable install).

    A plain ``pip install`` puts the package in site-packages, outside any checkout: that is a one-line
    :class:`PathsError` naming ``BOOM_HOME``, not a traceback from a missing folder later on.
    """
    env = os.environ.get("BOOM_HOME")
    if env:
        root = Path(env).resolve()
        if not root.is_dir():
            raise PathsError(f"BOOM_HOME={env} is not a folder; point it at a BOOM-TTE checkout")
        return root
    root = Path(__file__).resolve().parents[2]
    if not (root / "models").is_dir():
        raise PathsError(f"no BOOM-TTE checkout found: boom is installed at {Path(__file__).resolve().parent}, "
                         f"outside one; set BOOM_HOME to a checkout (or BOOM_MODELS_DIR, BOOM_DATA_DIR, BOOM_RESULTS_DIR)")
    return root


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
    """Model folders (``BOOM_MODELS_DIR``, default ``<repo>/models``); a missing folder is a PathsError."""
    env = os.environ.get("BOOM_MODELS_DIR")
    folder = Path(env or repo_root() / "models").resolve()
    if not folder.is_dir():
        where = f"BOOM_MODELS_DIR={env}" if env else f"{folder}"
        raise PathsError(f"no models folder at {where}; set BOOM_MODELS_DIR to a folder of model folders "
                         f"(or BOOM_HOME to a BOOM-TTE checkout)")
    return folder


ROOT_OPTIONS = {"data_dir": "BOOM_DATA_DIR", "results_dir": "BOOM_RESULTS_DIR"}


def use(**folders: "Path | str | None") -> None:
    """Point boom at other folders (``boom --data-dir/--results-dir``): the same as setting the variables.

    The environment variable is set, not a module global, so the processes boom starts (Slurm jobs, matrix
    cells) see the same folders.
    """
    for name, folder in folders.items():
        if name not in ROOT_OPTIONS:
            raise TypeError(f"paths.use() has no folder {name!r}; choose from {', '.join(ROOT_OPTIONS)}")
        if folder is not None:
            os.environ[ROOT_OPTIONS[name]] = str(Path(folder).expanduser().resolve())

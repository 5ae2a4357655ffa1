"""The LLNL CHNO-10k set (BOOM's "10K CSD"): crystal density and heat of formation of 10,206 molecules.

Two upstream CSVs with the same molecules in the same order.  They are read from a raw-data folder
(``--raw-dir`` / ``BOOM_RAW_DIR``), else downloaded from the upstream repository into
``<data>/raw``; either way their sha256 must equal the pinned value.  Columns are read by name.
"""
from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd

from boom.hashing import sha256_file

UPSTREAM = "https://raw.githubusercontent.com/FLASK-LLNL/LLNL-10k-Dataset/refs/heads/main/{name}"
UPSTREAM_COMMIT = "c6b705dd6c1ed4261b34c08bc7ec9fb042fd942d"
FILES = {
    # file name: (sha256, value column, our property name)
    "10k_dft_density_data.csv": ("69f30b417c7992802be26e7f4418e19f935fcb781b54365293b4c9f617668a78", "density", "density"),
    "10k_dft_hof_data.csv": ("8eab257fbd2941665581f32a186b3e7b1e1c1ede25b97b5659c4fc7cb99d9983", "hof_s", "hof"),
}
N_MOLECULES = 10206


class RawDataError(RuntimeError):
    """The raw CSVs are missing, corrupt or unreadable; the message says where to put them."""


def _download(name: str, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".part")
    try:
        with urllib.request.urlopen(UPSTREAM.format(name=name), timeout=30) as resp, open(tmp, "wb") as fh:
            fh.write(resp.read())
    except (urllib.error.URLError, OSError) as exc:
        tmp.unlink(missing_ok=True)
        raise RawDataError(
            f"{name} not found locally and the download failed ({exc}); put the LLNL CHNO-10k CSVs in a folder "
            f"and set BOOM_RAW_DIR=DIR (or run `boom data prepare --raw-dir DIR` once)"
        ) from None
    tmp.replace(dest)


def _raw_dir_source(raw_dir: Path) -> str:
    """Where a raw-data folder came from, for the hint: the environment or the --raw-dir option."""
    env = os.environ.get("BOOM_RAW_DIR")
    if env and Path(env).resolve() == Path(raw_dir).resolve():
        return " (from BOOM_RAW_DIR; unset it to download the CSVs instead)"
    return " (from --raw-dir)"


def locate_raw(raw_dir: Path | None, download_dir: Path) -> dict[str, Path]:
    """Paths of both CSVs, checked against their pinned sha256 (downloading them when allowed)."""
    found = {}
    for name, (sha, _, _) in FILES.items():
        candidates = ([raw_dir / name] if raw_dir else []) + [download_dir / name]
        path = next((p for p in candidates if p.exists()), None)
        if path is None:
            if raw_dir is not None:
                raise RawDataError(
                    f"{name} not found in raw-data folder {raw_dir}{_raw_dir_source(raw_dir)}; put the LLNL "
                    f"CHNO-10k CSVs there (see docs/data-and-splits.md), or give the folder that holds them"
                )
            path = download_dir / name
            _download(name, path)
        actual = sha256_file(path)
        if actual != sha:
            raise RawDataError(
                f"{path}: sha256 {actual[:12]}... differs from the pinned {sha[:12]}... (upstream commit "
                f"{UPSTREAM_COMMIT[:10]}); replace the file with the original"
            )
        found[name] = path
    return found


def load(raw_dir: Path | None, download_dir: Path) -> tuple[pd.DataFrame, dict[str, str]]:
    """Molecule table ``mol_id, smiles, density, hof`` in file order, and the source files' sha256."""
    paths = locate_raw(raw_dir, download_dir)
    frames = {}
    for name, path in paths.items():
        sha, column, prop = FILES[name]
        try:
            df = pd.read_csv(path)
        except Exception as exc:
            raise RawDataError(f"{path}: not a readable CSV ({exc})") from None
        for col in ("smiles", column):
            if col not in df.columns:
                raise RawDataError(f"{path}: missing column {col!r}; found {list(df.columns)}")
        values = pd.to_numeric(df[column], errors="coerce")
        if values.isna().any():
            bad = int(values.isna().idxmax()) + 2
            raise RawDataError(f"{path}: non-numeric or empty {column!r} on line {bad}")
        frames[prop] = pd.DataFrame({"smiles": df["smiles"].astype(str), prop: values.astype(float)})
    dens, hof = frames["density"], frames["hof"]
    if len(dens) != len(hof) or not (dens["smiles"].values == hof["smiles"].values).all():
        raise RawDataError("the density and hof CSVs do not list the same molecules in the same order")
    table = pd.DataFrame({
        "mol_id": [f"csd-{i:05d}" for i in range(1, len(dens) + 1)],
        "smiles": dens["smiles"],
        "density": dens["density"],
        "hof": hof["hof"],
    })
    return table, {name: FILES[name][0] for name in FILES}

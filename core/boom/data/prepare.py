"""``boom data prepare``: molecules, BOOM splits and a manifest per dataset, written once.

Layout under the data folder::

    <dataset>/molecules.csv        mol_id, smiles, one column per property
    <dataset>/splits/<prop>.csv    mol_id, split (train | id | ood), kde_density
    <dataset>/manifest.json        counts, value ranges, diagnostics, split digests, sha256 of sources and outputs

Idempotent: a dataset whose manifest matches its source checksums and whose files still hash to the
manifest is not recomputed (``force=True`` recomputes).  Every split is checked against the pinned
benchmark digest (``boom.data.pinned``) before anything is written: a machine that computes another split
stops with one line instead of silently running another benchmark.
"""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd

from boom_schema import PROPERTIES
from boom.data import llnl10k, pinned, qm9, splits
from boom.hashing import sha256_file
from boom import paths, progress

DATASETS = ("10k_csd", "qm9")
MANIFEST_VERSION = 2  # 2: portable tie rule, split digests


def dataset_properties(dataset: str) -> list[str]:
    return [p.name for p in PROPERTIES.values() if p.dataset == dataset]


def dataset_dir(dataset: str) -> Path:
    return paths.data_dir() / dataset


def load_manifest(dataset: str) -> Optional[dict[str, Any]]:
    path = dataset_dir(dataset) / "manifest.json"
    return json.loads(path.read_text()) if path.exists() else None


def _load_source(dataset: str, raw_dir: Optional[Path]) -> tuple[pd.DataFrame, dict[str, str]]:
    if dataset == "10k_csd":
        return llnl10k.load(raw_dir if raw_dir else paths.raw_dir(), paths.data_dir() / "raw")
    if dataset == "qm9":
        return qm9.load()
    raise ValueError(f"unknown dataset {dataset!r}: choose one of {', '.join(DATASETS)}")


def _source_digests(dataset: str, raw_dir: Optional[Path]) -> dict[str, str]:
    """The source files' sha256, read without parsing them: an up-to-date dataset is recognised in well under a
    second (qm9's table takes seconds to load), which every ``boom run`` and every test session pays."""
    if dataset == "10k_csd":
        located = llnl10k.locate_raw(raw_dir if raw_dir else paths.raw_dir(), paths.data_dir() / "raw")
        return {name: llnl10k.FILES[name][0] for name in located}  # locate_raw checked each file's pinned sha256
    if dataset == "qm9":
        return {part: sha256_file(qm9.package_data_dir() / part) for part in qm9.PARTS}
    raise ValueError(f"unknown dataset {dataset!r}: choose one of {', '.join(DATASETS)}")


def _is_current(manifest: Optional[dict[str, Any]], folder: Path, source_sha: dict[str, str]) -> bool:
    if not manifest or manifest.get("manifest_version") != MANIFEST_VERSION or manifest.get("sources") != source_sha:
        return False
    return all((folder / f).exists() and sha256_file(folder / f) == sha for f, sha in manifest["files"].items())


def _diagnostics(values: np.ndarray, assignment: np.ndarray) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for split in ("train", "id", "ood"):
        v = values[assignment == split]
        out[split] = {"n": int(v.size), "min": float(v.min()), "max": float(v.max()), "mean": float(v.mean())}
    train = values[assignment == "train"]
    ood = values[assignment == "ood"]
    # BOOM's bandwidth is in raw units: report how many OOD molecules still lie inside the train range
    out["ood_inside_train_range"] = int(((ood >= train.min()) & (ood <= train.max())).sum())
    out["ood_below_train_mean"] = int((ood < train.mean()).sum())
    return out


def _csv_column(values: "pd.Series | np.ndarray") -> list[str]:
    """One column as CSV fields.

    Floats as Python's shortest round-trip repr (exact), NaN as an empty field; a text column in which any field
    holds a comma, a quote or a line break (QM9's xyz blocks) is quoted field by field, quotes doubled.
    """
    arr = np.asarray(values)
    if arr.dtype.kind == "f":
        return ["" if v != v else repr(v) for v in arr.tolist()]
    fields = [str(v) for v in arr.tolist()]
    joined = "\x00".join(fields)
    if any(c in joined for c in ',"\n\r'):
        return ['"' + f.replace('"', '""') + '"' for f in fields]
    return fields


def _write_csv(path: Path, columns: dict[str, "pd.Series | np.ndarray"]) -> None:
    """A CSV written atomically from whole columns, without pandas' per-value formatter.

    pandas' ``float_format`` and its formatting of QM9's 100 MB of xyz text were most of QM9's split preparation
    (issue 19's profile); the values read back identical (checked on all 8 QM9 columns and the geometry table).
    """
    fields = [_csv_column(v) for v in columns.values()]
    tmp = path.with_suffix(".csv.part")
    tmp.write_text(",".join(columns) + "\n" + "\n".join(",".join(r) for r in zip(*fields)) + "\n")
    tmp.replace(path)


def prepare(dataset: str, raw_dir: Optional[Path] = None, force: bool = False) -> dict[str, Any]:
    """Prepare one dataset (idempotent) and return its manifest."""
    started = time.perf_counter()
    folder = dataset_dir(dataset)
    manifest = load_manifest(dataset)
    if not force and _is_current(manifest, folder, _source_digests(dataset, raw_dir)):
        return manifest  # type: ignore[return-value]
    table, source_sha = _load_source(dataset, raw_dir)
    loaded = time.perf_counter()
    props = dataset_properties(dataset)
    (folder / "splits").mkdir(parents=True, exist_ok=True)

    ood, dens = {}, {}
    for p in progress.steps(props, len(props), f"boom data prepare {dataset}: KDE split"):
        ood[p], dens[p] = splits.ood_mask(table[p].to_numpy(), PROPERTIES[p].n_ood)
    if dataset == "10k_csd":
        assigned = splits.assign_shared_stream(ood, order=props)
    else:
        assigned = {p: splits.assign_per_property(ood[p]) for p in props}
    digests = {p: pinned.check(p, table["mol_id"].tolist(), assigned[p], where=f"boom data prepare ({dataset})",
                               fix="nothing was written; please report this with your numpy version and CPU "
                                   "(results on this split would not be comparable)") for p in props}
    split_done = time.perf_counter()

    files: dict[str, str] = {}
    mol_path = folder / "molecules.csv"
    _write_csv(mol_path, {c: table[c] for c in ("mol_id", "smiles", *props)})
    files["molecules.csv"] = sha256_file(mol_path)
    if dataset == "qm9":  # geometries stay in the molecule table of the dataset folder
        geo_path = folder / "qm9_geometry_source.csv"
        _write_csv(geo_path, {c: table[c] for c in ("mol_id", "elements", "xyz")})
        files[geo_path.name] = sha256_file(geo_path)
    prop_info: dict[str, Any] = {}
    for p in props:
        path = folder / "splits" / f"{p}.csv"
        _write_csv(path, {"mol_id": table["mol_id"], "split": assigned[p], "kde_density": dens[p]})
        files[f"splits/{p}.csv"] = sha256_file(path)
        prop_info[p] = {
            "unit": PROPERTIES[p].unit,
            "bandwidth": splits.scott_bandwidth(len(table)),
            "split_sha256": digests[p],
            "boundary_ties": splits.boundary_ties(dens[p], PROPERTIES[p].n_ood),
            "counts": {s: int((assigned[p] == s).sum()) for s in ("train", "id", "ood")},
            **_diagnostics(table[p].to_numpy(), assigned[p]),
        }
    manifest = {
        "manifest_version": MANIFEST_VERSION,
        "dataset": dataset,
        "n_molecules": int(len(table)),
        "sources": source_sha,
        "split_definition": "gaussian KDE, bandwidth n**-0.2 (raw units); OOD = the k lowest densities by a stable "
                            "sort (ties by molecule order, densities at 36 significant bits); "
                            "ID if random.Random(42).random() < 0.05 else train",
        "properties": prop_info,
        "files": files,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - started, 2),
        # where the time goes (bench/split_prep.py): parsing the source, the KDE splits and draws, writing the files
        "phase_seconds": {"load": round(loaded - started, 2), "splits": round(split_done - loaded, 2),
                          "write": round(time.perf_counter() - split_done, 2)},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest


def verify(dataset: str) -> list[tuple[str, bool, str]]:
    """Check a prepared dataset: each split against its pinned digest, each file against the manifest.

    Returns (what, ok, detail) rows; nothing is rewritten (``boom data prepare --force`` does that).
    """
    folder = dataset_dir(dataset)
    manifest = load_manifest(dataset)
    if manifest is None:
        return [(dataset, False, f"not prepared under {folder}; run 'boom data prepare --dataset {dataset}'")]
    rows: list[tuple[str, bool, str]] = []
    for prop in dataset_properties(dataset):
        path = folder / "splits" / f"{prop}.csv"
        if not path.exists():
            rows.append((f"{dataset}/{prop}", False, f"{path} is missing; run 'boom data prepare --force'"))
            continue
        s = pd.read_csv(path, dtype={"mol_id": str, "split": str}, usecols=["mol_id", "split"])
        try:
            digest = pinned.check(prop, s["mol_id"].tolist(), s["split"].tolist(), where=str(path),
                                  fix="rewrite it with 'boom data prepare --force'")
            rows.append((f"{dataset}/{prop}", True, f"pinned split {digest[:12]}"))
        except pinned.SplitMismatch as exc:
            rows.append((f"{dataset}/{prop}", False, str(exc)))
    for name, sha in manifest.get("files", {}).items():
        path = folder / name
        if not path.exists() or sha256_file(path) != sha:
            rows.append((f"{dataset}/{name}", False, "changed since 'boom data prepare' wrote it "
                                                    "(sha256 differs from manifest.json); run 'boom data prepare --force'"))
    return rows

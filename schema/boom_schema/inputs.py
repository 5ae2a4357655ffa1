"""The task's input tables, both directions: ``train.csv`` (mol_id, smiles, y) and the blind ``test.csv``
(mol_id, smiles).

The orchestrator writes them with :func:`write_train` / :func:`write_test`; a model reads them with
:func:`read_train` / :func:`read_test`, which refuse a malformed file with one line naming the file, the
problem and the first offending lines (the header being line 1).  Columns are exactly those listed (a label
column in test.csv would leak the answer, so extra columns are refused); mol_ids are unique and non-empty;
y is a finite number.  Labels are written with 17 significant digits, so they read back bit for bit.  Plain
``csv`` keeps this package free of heavy dependencies (a model turns a table into a DataFrame itself).
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from boom_schema.predictions import _where  # one wording for offending lines in every boundary file

TRAIN_COLUMNS = ("mol_id", "smiles", "y")
TEST_COLUMNS = ("mol_id", "smiles")


class InputFileError(ValueError):
    """A malformed train.csv or test.csv; ``str(error)`` is one line saying what is wrong and where."""


@dataclass(frozen=True)
class InputTable:
    """One input file in file order; ``y`` is None for the blind test file."""

    mol_id: list[str]
    smiles: list[str]
    y: Optional[list[float]] = None

    def __len__(self) -> int:
        return len(self.mol_id)




def _check(mol_id: Sequence[str], smiles: Sequence[str], y: Optional[Sequence[float]], name: str,
           lines: Sequence[int]) -> None:
    if len(smiles) != len(mol_id) or (y is not None and len(y) != len(mol_id)):
        raise InputFileError(f"{name}: columns of different lengths (mol_id {len(mol_id)}, smiles {len(smiles)}"
                             + (f", y {len(y)})" if y is not None else ")"))
    empty = [n for n, m in zip(lines, mol_id) if not str(m).strip()]
    if empty:
        raise InputFileError(f"{name}: " + _where(empty, "empty mol_id"))
    seen: set[str] = set()
    dups = []
    for n, m in zip(lines, mol_id):
        if m in seen:
            dups.append(n)
        seen.add(m)
    if dups:
        raise InputFileError(f"{name}: " + _where(dups, "duplicate mol_id"))
    no_smiles = [n for n, s in zip(lines, smiles) if not str(s).strip()]
    if no_smiles:
        raise InputFileError(f"{name}: " + _where(no_smiles, "empty smiles"))
    if y is not None:
        bad = [n for n, v in zip(lines, y) if not math.isfinite(v)]
        if bad:
            raise InputFileError(f"{name}: " + _where(bad, "label y is NaN or infinite")
                                 + " (every train molecule needs a finite label)")


def _write(path: str | Path, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with tmp.open("w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(columns)
        w.writerows(rows)
    tmp.replace(path)
    return path


def write_train(path: str | Path, mol_id: Sequence[str], smiles: Sequence[str], y: Sequence[float]) -> Path:
    """Write train.csv (labels as ``%.17g``: they read back exactly); invalid rows are refused first."""
    y = [float(v) for v in y]
    _check(mol_id, smiles, y, Path(path).name, range(2, len(mol_id) + 2))
    return _write(path, TRAIN_COLUMNS, [(m, s, "%.17g" % v) for m, s, v in zip(mol_id, smiles, y)])


def write_test(path: str | Path, mol_id: Sequence[str], smiles: Sequence[str]) -> Path:
    """Write the blind test.csv: mol_id and smiles only, in the order given."""
    _check(mol_id, smiles, None, Path(path).name, range(2, len(mol_id) + 2))
    return _write(path, TEST_COLUMNS, list(zip(mol_id, smiles)))


def _read(source: "str | Path", columns: Sequence[str], name: Optional[str]) -> InputTable:
    if isinstance(source, Path):
        name = name or source.name
        if not source.is_file():
            raise InputFileError(f"{name}: file not found at {source} (is the task's input folder mounted?)")
        text = source.read_text(encoding="utf-8")
    else:
        name = name or "input"
        text = str(source)
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise InputFileError(f"{name}: file is empty; expected a header '{','.join(columns)}'")
    header = [h.strip() for h in rows[0]]
    missing = [c for c in columns if c not in header]
    if missing:
        raise InputFileError(f"{name}: missing column(s) {missing} in header {header}; expected {list(columns)}")
    extra = [c for c in header if c not in columns]
    if extra or len(set(header)) != len(header):
        raise InputFileError(f"{name}: unexpected or repeated column(s) {extra or header} in header; "
                             f"expected exactly {list(columns)}")
    body = [(i + 2, r) for i, r in enumerate(rows[1:]) if r != []]
    bad_width = [n for n, r in body if len(r) != len(header)]
    if bad_width:
        raise InputFileError(f"{name}: " + _where(bad_width, f"wrong number of fields (expected {len(header)})"))
    if body and not text.endswith("\n"):
        raise InputFileError(f"{name}: last line {body[-1][0]} has no line ending (truncated file?)")
    col = {c: header.index(c) for c in header}
    lines = [n for n, _ in body]
    mol_id = [r[col["mol_id"]] for _, r in body]
    smiles = [r[col["smiles"]] for _, r in body]
    y = None
    if "y" in columns:
        y = []
        not_num = []
        for n, r in body:
            try:
                y.append(float(r[col["y"]]))
            except ValueError:
                y.append(math.nan)
                if r[col["y"]].strip():
                    not_num.append(n)
        if not_num:
            raise InputFileError(f"{name}: " + _where(not_num, "label y is not a number"))
    _check(mol_id, smiles, y, name, lines)
    return InputTable(mol_id=mol_id, smiles=smiles, y=y)


def read_train(source: "str | Path", *, name: Optional[str] = None) -> InputTable:
    """Parse and check train.csv (a Path, or the CSV text as a str)."""
    return _read(source, TRAIN_COLUMNS, name)


def read_test(source: "str | Path", *, name: Optional[str] = None) -> InputTable:
    """Parse and check the blind test.csv (a Path, or the CSV text as a str)."""
    return _read(source, TEST_COLUMNS, name)

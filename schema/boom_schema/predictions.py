"""Predictions: the one file every model writes, validated strictly at the boundary.

``predictions.csv`` has one row per test molecule with the columns ``mol_id, y_pred`` and an optional
``y_std``.  Contract 2 hides which test molecules are OOD: a model predicts one blind ``test.csv`` and the
orchestrator splits the predictions by mol_id when it scores them, so a ``split`` column is refused.
:func:`validate_predictions` rejects anything else with a one-line message that
names the first offending rows (file line numbers, the header being line 1), so a model author sees at
once what to fix.  Plain ``csv`` parsing keeps this package free of heavy dependencies.
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Collection, Optional, Sequence

from pydantic import Field

from boom_schema.base import Contract

PREDICTION_COLUMNS = ("mol_id", "y_pred")
OPTIONAL_COLUMNS = ("y_std",)
_SHOW = 5  # offending rows named in a message


class Split(str, Enum):
    """The test splits the orchestrator scores (a model never sees them)."""

    ID = "id"
    OOD = "ood"


class PredictionRow(Contract):
    """One row of predictions.csv (documented in the JSON Schema for non-Python models)."""

    mol_id: str
    y_pred: float = Field(allow_inf_nan=False)
    y_std: Optional[float] = Field(None, ge=0, allow_inf_nan=False)


class PredictionsError(ValueError):
    """Invalid predictions; ``str(error)`` is a single line saying what is wrong and where."""


@dataclass(frozen=True)
class PredictionTable:
    """Validated predictions in file order."""

    mol_id: list[str]
    y_pred: list[float]
    y_std: Optional[list[float]]

    def __len__(self) -> int:
        return len(self.mol_id)


def _where(lines: Sequence[int], what: str) -> str:
    shown = ", ".join(str(n) for n in lines[:_SHOW])
    more = f" and {len(lines) - _SHOW} more" if len(lines) > _SHOW else ""
    return f"{what} on line{'s' if len(lines) > 1 else ''} {shown}{more}"


def _number(text: str) -> Optional[float]:
    try:
        return float(text)
    except ValueError:
        return None


def validate_predictions(
    source: "str | Path", expected: Collection[str], *, name: str = "predictions.csv"
) -> PredictionTable:
    """Parse and check predictions against the task's test molecules (``expected``: their mol_ids).

    ``source`` is a :class:`~pathlib.Path` to the file, or the CSV text itself as a ``str``.  Raises :class:`PredictionsError` on the first class
    of problem found, naming the offending lines.
    """
    if isinstance(source, Path):
        path = source
        if not path.exists():
            raise PredictionsError(f"{name}: file not found at {path} (the model wrote no predictions)")
        text = path.read_text(encoding="utf-8", errors="replace")
    else:
        text = str(source)
    if not text.strip():
        raise PredictionsError(f"{name}: file is empty; expected a header '{','.join(PREDICTION_COLUMNS)}' and one row per test molecule")

    rows = list(csv.reader(io.StringIO(text)))
    header = [h.strip() for h in rows[0]]
    if "split" in header:
        raise PredictionsError(f"{name}: has a 'split' column, which contract 2 does not allow (the test set is blind); "
                               f"write the columns {','.join(PREDICTION_COLUMNS)}[,y_std] only")
    missing_cols = [c for c in PREDICTION_COLUMNS if c not in header]
    if missing_cols:
        raise PredictionsError(
            f"{name}: missing column(s) {missing_cols} in header {header}; expected {list(PREDICTION_COLUMNS)} (+ optional y_std)"
        )
    extra_cols = [c for c in header if c not in PREDICTION_COLUMNS + OPTIONAL_COLUMNS]
    if extra_cols or len(set(header)) != len(header):
        raise PredictionsError(f"{name}: unexpected or repeated column(s) {extra_cols or header} in header; allowed: mol_id, y_pred, y_std")
    col = {c: header.index(c) for c in header}
    body = [(i + 2, r) for i, r in enumerate(rows[1:]) if r != []]

    bad_width = [n for n, r in body if len(r) != len(header)]
    if bad_width:
        raise PredictionsError(
            f"{name}: " + _where(bad_width, f"wrong number of fields (expected {len(header)}; truncated file?)")
        )
    if not text.endswith("\n") and body:
        raise PredictionsError(f"{name}: last line {body[-1][0]} has no line ending (truncated file?)")

    ids = [r[col["mol_id"]].strip() for _, r in body]
    lines = [n for n, _ in body]

    def numbers(column: str) -> list[float]:
        values = [_number(r[col[column]].strip()) for _, r in body]
        not_num = [n for n, v in zip(lines, values) if v is None]
        if not_num:
            raise PredictionsError(f"{name}: " + _where(not_num, f"{column} is not a number"))
        not_finite = [n for n, v in zip(lines, values) if not math.isfinite(v)]  # type: ignore[arg-type]
        if not_finite:
            raise PredictionsError(f"{name}: " + _where(not_finite, f"{column} is NaN or infinite"))
        return values  # type: ignore[return-value]

    y_pred = numbers("y_pred")
    y_std = numbers("y_std") if "y_std" in col else None
    if y_std is not None:
        negative = [n for n, v in zip(lines, y_std) if v < 0]
        if negative:
            raise PredictionsError(f"{name}: " + _where(negative, "y_std is negative"))

    seen: dict[str, int] = {}
    dups = []
    for n, i in zip(lines, ids):
        if i in seen:
            dups.append(n)
        seen.setdefault(i, n)
    if dups:
        raise PredictionsError(f"{name}: " + _where(dups, "duplicate mol_id"))

    expected = expected if isinstance(expected, (set, frozenset, dict)) else set(expected)
    unknown = [n for n, i in zip(lines, ids) if i not in expected]
    if unknown:
        raise PredictionsError(f"{name}: " + _where(unknown, "mol_id not in the task's test.csv"))
    absent = sorted(i for i in expected if i not in seen)  # sorted: the same message on every run
    if absent:
        shown = ", ".join(absent[:_SHOW]) + (f" and {len(absent) - _SHOW} more" if len(absent) > _SHOW else "")
        raise PredictionsError(f"{name}: {len(absent)} test molecule(s) have no prediction: {shown}")
    return PredictionTable(mol_id=ids, y_pred=y_pred, y_std=y_std)


def write_predictions(path: str | Path, mol_id: Sequence[str],
                      y_pred: Sequence[float], y_std: Optional[Sequence[float]] = None) -> Path:
    """Write predictions.csv in the canonical shape (full float precision, never rounded)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.part")
    with tmp.open("w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(list(PREDICTION_COLUMNS) + (["y_std"] if y_std is not None else []))
        for k in range(len(mol_id)):
            row = [mol_id[k], repr(float(y_pred[k]))]
            if y_std is not None:
                row.append(repr(float(y_std[k])))
            w.writerow(row)
    tmp.replace(path)
    return path

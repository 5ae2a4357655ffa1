"""Leaderboards from the results tree: every run counted, failures shown with their reason.

Seeds are aggregated here (mean and sample sd), never at the source.  For each (model, property,
subset) the newest run of each seed counts.
"""
from __future__ import annotations

import csv
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from boom_schema import PROPERTIES, RunStatus
from boom import paths
from boom.results import iter_runs

COLUMNS = ["dataset", "property", "unit", "model", "subset", "seeds", "failed",
           "id_rmse", "id_rmse_sd", "ood_rmse", "ood_rmse_sd", "id_mae", "ood_mae", "id_r2", "ood_r2",
           "ood_id_ratio", "reason"]


@dataclass
class Row:
    dataset: str
    property: str
    model: str
    subset: Optional[str]
    ok: list = field(default_factory=list)  # Scores of successful seeds
    failures: list = field(default_factory=list)  # reasons


def _mean_sd(values: list[float]) -> tuple[float, float]:
    if not values:
        return math.nan, math.nan
    m = sum(values) / len(values)
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return m, sd


def collect(root: Optional[Path] = None) -> list[Row]:
    newest: dict[tuple, tuple] = {}
    for record, scores, _ in iter_runs(root):
        key = (record.dataset, record.property, record.model, record.subset, record.seed)
        if key not in newest or record.finished_at > newest[key][0].finished_at:
            newest[key] = (record, scores)
    rows: dict[tuple, Row] = {}
    for (dataset, prop, model, subset, _seed), (record, scores) in sorted(newest.items(), key=lambda kv: str(kv[0])):
        row = rows.setdefault((dataset, prop, model, subset), Row(dataset, prop, model, subset))
        if record.status == RunStatus.OK and scores is not None:
            row.ok.append(scores)
        else:
            row.failures.append(f"{record.status.value}: {record.reason}")
    order = {p: i for i, p in enumerate(PROPERTIES)}
    return sorted(rows.values(), key=lambda r: (order.get(r.property, 99), r.subset or "", r.model))


def table(rows: list[Row]) -> list[dict]:
    out = []
    for r in rows:
        id_rmse = _mean_sd([s.id.rmse for s in r.ok])
        ood_rmse = _mean_sd([s.ood.rmse for s in r.ok])
        out.append({
            "dataset": r.dataset, "property": r.property, "unit": PROPERTIES[r.property].unit, "model": r.model,
            "subset": r.subset or "full", "seeds": len(r.ok), "failed": len(r.failures),
            "id_rmse": id_rmse[0], "id_rmse_sd": id_rmse[1], "ood_rmse": ood_rmse[0], "ood_rmse_sd": ood_rmse[1],
            "id_mae": _mean_sd([s.id.mae for s in r.ok])[0], "ood_mae": _mean_sd([s.ood.mae for s in r.ok])[0],
            "id_r2": _mean_sd([s.id.r2 for s in r.ok])[0], "ood_r2": _mean_sd([s.ood.r2 for s in r.ok])[0],
            "ood_id_ratio": _mean_sd([s.ood_id_rmse_ratio for s in r.ok])[0],
            "reason": r.failures[-1] if r.failures else "",
        })
    return out


def _fmt(v: float, sd: Optional[float] = None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    text = f"{v:.4g}"
    return f"{text} ± {sd:.2g}" if sd else text


def markdown(rows: list[dict]) -> str:
    lines = ["| property | model | subset | seeds | ID RMSE | OOD RMSE | OOD/ID | ID R² | OOD R² | failures |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        fail = f"{r['failed']} ({r['reason'][:80]})" if r["failed"] else "0"
        lines.append(
            f"| {r['property']} ({r['unit']}) | {r['model']} | {r['subset']} | {r['seeds']} | "
            f"{_fmt(r['id_rmse'], r['id_rmse_sd'])} | {_fmt(r['ood_rmse'], r['ood_rmse_sd'])} | "
            f"{_fmt(r['ood_id_ratio'])} | {_fmt(r['id_r2'])} | {_fmt(r['ood_r2'])} | {fail} |"
        )
    return "\n".join(lines) + "\n"


def write(out_dir: Optional[Path] = None, root: Optional[Path] = None) -> tuple[str, list[Path]]:
    """Write leaderboard.md and leaderboard.csv; return the Markdown and the written paths."""
    out_dir = out_dir or paths.results_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = table(collect(root))
    md = markdown(rows)
    md_path = out_dir / "leaderboard.md"
    md_path.write_text("# BOOM-TTE leaderboard\n\nRMSE in each property's unit; mean ± sd over seeds.\n\n" + md)
    csv_path = out_dir / "leaderboard.csv"
    with csv_path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    return md, [md_path, csv_path]

"""Leaderboards from the results tree: every run counted, failures shown with their reason.

Seeds are aggregated here (mean and sample sd), never at the source.  For each (model, property,
subset) the newest run of each seed counts.
"""
from __future__ import annotations

import csv
import html as _html
import math
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from boom_schema import PROPERTIES, RunStatus
from boom import paths, runfiles
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
    """Write leaderboard.md, .csv, .html and the OOD heatmap PNG; return the Markdown and the written paths."""
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
    return md, [md_path, csv_path, *write_html(out_dir, root)]



# ---------------------------------------------------------------------------------------------------
# Static HTML page and heatmap (open from disk: every link is relative to the page's folder)
# ---------------------------------------------------------------------------------------------------

HEATMAP = "leaderboard_ood_heatmap.png"


def _task_label(row: Row) -> str:
    return row.property + (f" ({row.subset})" if row.subset else "")


def _stats(values: list[float]) -> str:
    m, sd = _mean_sd(values)
    return _fmt(m, sd if len(values) > 1 else None)


def _parity_plots(root: Optional[Path]) -> dict[tuple, list[tuple[int, Path]]]:
    """(dataset, property, model, subset) -> [(seed, parity.png)] of the newest successful run per seed."""
    newest: dict[tuple, tuple] = {}
    for record, scores, folder in iter_runs(root):
        if record.status != RunStatus.OK or not runfiles.is_regular(folder / "parity.png"):  # never link to a link
            continue
        key = (record.dataset, record.property, record.model, record.subset, record.seed)
        if key not in newest or record.finished_at > newest[key][0]:
            newest[key] = (record.finished_at, folder / "parity.png")
    out: dict[tuple, list] = defaultdict(list)
    for (dataset, prop, model, subset, seed), (_, path) in sorted(newest.items(), key=lambda kv: str(kv[0])):
        out[(dataset, prop, model, subset)].append((seed, path))
    return out


def heatmap(rows: list[Row], path: Path) -> Optional[Path]:
    """Model x task heatmap of OOD RMSE divided by the task's best model (1 = best); None when empty."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    tasks = list(dict.fromkeys(_task_label(r) for r in rows))
    models = sorted({r.model for r in rows})
    if not tasks or not models:
        return None
    grid = np.full((len(models), len(tasks)), np.nan)
    for r in rows:
        if r.ok:
            grid[models.index(r.model), tasks.index(_task_label(r))] = _mean_sd([s.ood.rmse for s in r.ok])[0]
    best = np.array([np.min(col[np.isfinite(col)]) if np.isfinite(col).any() else np.nan for col in grid.T])
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = grid / best
    fig, ax = plt.subplots(figsize=(1.1 * len(tasks) + 2.5, 0.45 * len(models) + 1.8), dpi=110)
    finite = norm[np.isfinite(norm)]
    vmax = max(2.0, float(finite.max())) if finite.size else 2.0
    im = ax.imshow(np.ma.masked_invalid(norm), cmap="viridis_r", vmin=1.0, vmax=vmax, aspect="auto")
    ax.set_xticks(range(len(tasks)), tasks, rotation=40, ha="right")
    ax.set_yticks(range(len(models)), models)
    for i in range(len(models)):
        for j in range(len(tasks)):
            v = norm[i, j]
            text = f"{v:.2f}" if np.isfinite(v) else "fail" if any(
                r.model == models[i] and _task_label(r) == tasks[j] and r.failures for r in rows) else ""
            ax.text(j, i, text, ha="center", va="center", fontsize=8,
                    color="black" if not np.isfinite(v) or v < 1 + 0.5 * (vmax - 1) else "white")
    fig.colorbar(im, ax=ax, label="× best OOD RMSE")
    ax.set_title("OOD RMSE normalised per task (1 = best)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def html_page(rows: list[Row], out_dir: Path, root: Optional[Path] = None, heatmap_name: Optional[str] = None) -> str:
    """The leaderboard as one static HTML page (no scripts, no external resources)."""
    plots = _parity_plots(root)
    esc = _html.escape
    parts = [
        "<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
        "<title>BOOM-TTE leaderboard</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}"
        "table{border-collapse:collapse;margin-bottom:1.5em}th,td{border:1px solid #ccc;padding:3px 7px;"
        "font-size:13px;text-align:right}th{background:#eef}td.l{text-align:left}tr.fail td{color:#a00}"
        "img.thumb{width:120px;border:1px solid #ddd;margin:1px}h2{margin-top:1.2em}</style></head><body>",
        "<h1>BOOM-TTE leaderboard</h1>",
        "<p>Per task: ID and OOD metrics as mean ± sd over seeds (sample sd), in the property's unit; "
        "OOD/ID = OOD RMSE / ID RMSE. Failed seeds are counted with their reason.</p>",
    ]
    if heatmap_name:
        parts.append(f"<h2>OOD RMSE, normalised per task</h2><img id=\"heatmap\" src=\"{esc(heatmap_name)}\" "
                     "alt=\"model x task heatmap of OOD RMSE normalised per task\">")
    if not rows:
        parts.append("<p id=\"empty\">No runs yet: <code>boom run</code> or <code>boom matrix</code> first.</p>")
    by_task: dict[tuple, list[Row]] = defaultdict(list)
    for r in rows:
        by_task[(r.property, r.subset)].append(r)
    for (prop, subset), task_rows in by_task.items():
        unit = PROPERTIES[prop].unit
        label = f"{prop} ({PROPERTIES[prop].dataset}{', subset ' + subset if subset else ''})"
        parts.append(f"<h2 id=\"task-{esc(prop)}{'-' + esc(subset) if subset else ''}\">{esc(label)}, {esc(unit)}</h2>")
        parts.append("<table class=\"leaderboard\"><thead><tr><th>model</th><th>seeds</th><th>ID RMSE</th>"
                     "<th>OOD RMSE</th><th>OOD/ID</th><th>ID MAE</th><th>OOD MAE</th><th>ID R²</th><th>OOD R²</th>"
                     "<th>failures</th><th>parity plots</th></tr></thead><tbody>")
        ranked = sorted(task_rows, key=lambda r: (_mean_sd([s.ood.rmse for s in r.ok])[0]
                                                  if r.ok else math.inf, r.model))
        for r in ranked:
            thumbs = "".join(
                f"<a href=\"{esc(os.path.relpath(p, out_dir))}\"><img class=\"thumb\" "
                f"src=\"{esc(os.path.relpath(p, out_dir))}\" alt=\"parity {esc(r.model)} {esc(prop)} seed {seed}\"></a>"
                for seed, p in plots.get((r.dataset, r.property, r.model, r.subset), []))
            fails = f"{len(r.failures)}: {esc(r.failures[-1][:160])}" if r.failures else "0"
            parts.append(
                f"<tr class=\"{'fail' if not r.ok else 'ok'}\"><td class=\"l\">{esc(r.model)}</td><td>{len(r.ok)}</td>"
                f"<td>{_stats([s.id.rmse for s in r.ok])}</td><td>{_stats([s.ood.rmse for s in r.ok])}</td>"
                f"<td>{_stats([s.ood_id_rmse_ratio for s in r.ok])}</td>"
                f"<td>{_stats([s.id.mae for s in r.ok])}</td><td>{_stats([s.ood.mae for s in r.ok])}</td>"
                f"<td>{_stats([s.id.r2 for s in r.ok])}</td><td>{_stats([s.ood.r2 for s in r.ok])}</td>"
                f"<td class=\"l\">{fails}</td><td class=\"l\">{thumbs}</td></tr>")
        parts.append("</tbody></table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_html(out_dir: Path, root: Optional[Path] = None) -> list[Path]:
    """leaderboard.html and the heatmap PNG next to it."""
    rows = collect(root)
    written = []
    png = heatmap(rows, out_dir / HEATMAP)
    if png is not None:
        written.append(png)
    page = out_dir / "leaderboard.html"
    page.write_text(html_page(rows, out_dir, root, HEATMAP if png is not None else None))
    return [page, *written]

"""Leaderboards from the results tree, keyed by configuration: every run counted, failures shown with their reason.

A row is one configuration on one task.  A configuration is everything that defines a run except its seed: the
model, its folder digest, the hyperparameters (smoke included), the subset label, the device and the split digest
(docs/leaderboard.md).  Within a configuration the newest successful run of each seed counts; a seed that never
succeeded counts as failed with the newest failure's reason.  Seeds are aggregated here (mean and sample sd; no sd
for one seed), never at the source.
"""
from __future__ import annotations

import html as _html
import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

from boom_schema import PROPERTIES, RunRecord, RunStatus, Scores
from boom import paths, registry
from boom.hashing import sha256_json
from boom.results import iter_runs

FROM_SCRATCH = "from scratch"


@dataclass(frozen=True)
class Run:
    """One run folder: its record, its scores (successful runs) and where it lies."""

    record: RunRecord
    scores: Optional[Scores]
    folder: Path

    @property
    def ok(self) -> bool:
        return self.record.status == RunStatus.OK and self.scores is not None


@dataclass(frozen=True)
class ConfigKey:
    """Everything that defines a run except its seed; runs of one key are seeds of one configuration."""

    model: str
    model_sha256: Optional[str]
    hyperparameters: str  # canonical JSON (sorted keys)
    smoke: bool
    subset: Optional[str]
    device: str
    split_sha256: Optional[str]

    @property
    def config_id(self) -> str:
        return sha256_json(self.__dict__)[:10]

    def full(self) -> str:
        """The whole configuration as one JSON line (CSV column and HTML tooltip)."""
        return json.dumps({"model": self.model, "model_sha256": self.model_sha256,
                           "hyperparameters": json.loads(self.hyperparameters), "smoke": self.smoke,
                           "subset": self.subset, "device": self.device, "split_sha256": self.split_sha256},
                          sort_keys=True)


@dataclass
class Row:
    """One configuration on one task: the counted run of every seed."""

    dataset: str
    property: str
    test_set: Optional[str]  # None: the full ID/OOD test sets; 'n80': a --subset run's smaller ones
    config: ConfigKey
    ok: list[Run] = field(default_factory=list)
    failed: list[Run] = field(default_factory=list)  # seeds with no successful run: their newest failure
    stats: dict[str, Any] = field(default_factory=dict)  # intervals, tie mark, uncertainty (boom.evidence)
    evidence: Optional[dict] = None  # split -> boom.evidence.SplitErrors, when the predictions were read

    @property
    def model(self) -> str:
        return self.config.model

    @property
    def task(self) -> tuple[str, str, Optional[str]]:
        return self.dataset, self.property, self.test_set

    @property
    def runs(self) -> list[Run]:
        return sorted(self.ok + self.failed, key=lambda r: r.record.seed)


# ---------------------------------------------------------------------------------------------------
# configurations
# ---------------------------------------------------------------------------------------------------

def _model(name: str) -> Optional[tuple[dict, dict, Optional[str], str]]:
    """(defaults, smoke overrides, pretrained, folder digest) of a model folder today; None when unknown.

    Without its folder a configuration is shown by all its hyperparameters (nothing to compare them with).
    """
    return _model_in(name, str(paths.models_dir()))


@lru_cache(maxsize=None)
def _model_in(name: str, models_dir: str) -> Optional[tuple[dict, dict, Optional[str], str]]:
    try:
        entry = registry.get(name, Path(models_dir))
    except (KeyError, ValueError):
        return None
    return dict(entry.spec.defaults), dict(entry.spec.smoke), entry.spec.pretrained, entry.content_hash()


def subset_parts(subset: Optional[str]) -> tuple[Optional[int], Optional[int]]:
    """``n80-train2000`` -> (80, 2000): the --subset (every split) and --train-subset parts of a subset label."""
    n = train = None
    for part in (subset or "").split("-"):
        if part.startswith("train") and part[5:].isdigit():
            train = int(part[5:])
        elif part.startswith("n") and part[1:].isdigit():
            n = int(part[1:])
    return n, train


def _is_smoke(record: RunRecord) -> bool:
    if "smoke" in record.model_fields_set:  # recorded by the orchestrator
        return record.smoke
    known = _model(record.model)
    if known is None or not known[1]:
        return False
    defaults, smoke = known[0], known[1]
    smoked = {**defaults, **smoke}
    return smoked != defaults and record.hyperparameters == smoked  # records written before 'smoke' was kept


def config_of(record: RunRecord) -> ConfigKey:
    return ConfigKey(model=record.model, model_sha256=record.model_sha256,
                     hyperparameters=json.dumps(record.hyperparameters, sort_keys=True, default=str),
                     smoke=_is_smoke(record), subset=record.subset, device=record.device,
                     split_sha256=record.split_sha256)


def _value(v: Any) -> str:
    return json.dumps(v) if isinstance(v, str) else str(v).lower() if isinstance(v, bool) else str(v)


def config_short(key: ConfigKey) -> str:
    """``defaults``, ``smoke``, ``n_estimators=3``, ``defaults · train2000 · cuda``...: what sets the row apart."""
    params = json.loads(key.hyperparameters)
    known = _model(key.model)
    base = {}
    if known is not None:
        base = {**known[0], **(known[1] if key.smoke else {})}
    changed = [f"{k}={_value(v)}" for k, v in sorted(params.items()) if k not in base or base[k] != v]
    changed += [f"{k} unset" for k in sorted(base) if k not in params]
    parts = [("smoke" if key.smoke else "defaults") if not changed else
             ("smoke " if key.smoke else "") + " ".join(changed)]
    if key.subset:
        parts.append(key.subset)
    if key.device != "cpu":
        parts.append(key.device)
    if known is not None and key.model_sha256 and key.model_sha256 != known[3]:
        parts.append(f"model folder {key.model_sha256[:7]}")
    return " · ".join(parts)


def is_default(key: ConfigKey) -> bool:
    """The model's default configuration: model.yaml defaults, no smoke, full data, today's model folder."""
    known = _model(key.model)
    if known is None or key.smoke or key.subset:
        return False
    return json.loads(key.hyperparameters) == known[0] and key.model_sha256 in (None, known[3])


def pretrained_of(row: Row) -> str:
    """The checkpoint a row's weights started from, or 'from scratch'."""
    for run in row.ok + row.failed:
        report = run.record.model_report
        if report is not None:
            return report.pretrained or FROM_SCRATCH
    known = _model(row.model)
    return (known[2] if known is not None and known[2] else FROM_SCRATCH)


# ---------------------------------------------------------------------------------------------------
# collecting runs into rows
# ---------------------------------------------------------------------------------------------------

def all_runs(root: Optional[Path] = None) -> list[Run]:
    return [Run(record, scores, folder) for record, scores, folder in iter_runs(root)]


_UNKNOWABLE = ("model_sha256", "split_sha256")  # blank in a failure record that Slurm's watcher wrote for a cell


def _configs(runs: list[Run]) -> dict[int, ConfigKey]:
    """Each run's configuration; a failure record lacking a digest joins the one successful configuration it fits.

    A cell that Slurm ended without a record gets one written by the watcher, without the model-folder and split
    digests; it belongs to the row of the same settings, not to a row of its own.
    """
    keys = {id(r): config_of(r.record) for r in runs}
    known: dict[tuple, set[ConfigKey]] = {}
    for r in runs:
        if r.ok:
            k = keys[id(r)]
            known.setdefault((r.record.dataset, r.record.property, k.model, k.hyperparameters, k.smoke, k.subset,
                              k.device), set()).add(k)
    for r in runs:
        k = keys[id(r)]
        if r.ok or all(getattr(k, f) is not None for f in _UNKNOWABLE):
            continue
        fits = [c for c in known.get((r.record.dataset, r.record.property, k.model, k.hyperparameters, k.smoke,
                                      k.subset, k.device), ())
                if all(getattr(k, f) in (None, getattr(c, f)) for f in _UNKNOWABLE)]
        if len(fits) == 1:
            keys[id(r)] = fits[0]
    return keys


def _rows(runs: list[Run]) -> list[Row]:
    chosen: dict[tuple, Run] = {}
    configs = _configs(runs)
    for run in runs:  # per (task, configuration, seed): the newest ok run, else the newest failure
        rec = run.record
        key = (rec.dataset, rec.property, subset_parts(rec.subset)[0], configs[id(run)], rec.seed)
        have = chosen.get(key)
        if have is None or (run.ok, rec.finished_at) > (have.ok, have.record.finished_at):
            chosen[key] = run
    rows: dict[tuple, Row] = {}
    for (dataset, prop, n, cfg, _seed), run in chosen.items():
        row = rows.setdefault((dataset, prop, n, cfg), Row(dataset, prop, f"n{n}" if n else None, cfg))
        (row.ok if run.ok else row.failed).append(run)
    order = {p: i for i, p in enumerate(PROPERTIES)}
    for row in rows.values():
        row.ok.sort(key=lambda r: r.record.seed)
        row.failed.sort(key=lambda r: r.record.seed)

    def rank(r: Row) -> tuple:  # per task, best OOD RMSE first; rows without a successful seed last
        ood = mean_sd([x.scores.ood.rmse for x in r.ok])[0] if r.ok else math.inf
        return order.get(r.property, 99), r.test_set or "", ood, r.model, config_short(r.config), r.config.config_id

    return sorted(rows.values(), key=rank)


def load(root: Optional[Path] = None, evidence: bool = True) -> tuple[list[Row], list[str]]:
    """Every (task, configuration) row of the results tree, and one-line notes on what could not be read.

    ``evidence`` recomputes intervals, uncertainty scores and tie marks from the runs' predictions
    (:mod:`boom.evidence`); without it a row has only what its scores.json files hold.
    """
    from boom import evidence as _evidence

    rows = _rows(all_runs(root))
    notes = _evidence.annotate(rows) if evidence else []
    return rows, notes


def collect(root: Optional[Path] = None, evidence: bool = True) -> list[Row]:
    """The rows of :func:`load`."""
    return load(root, evidence)[0]


# ---------------------------------------------------------------------------------------------------
# tables
# ---------------------------------------------------------------------------------------------------

COLUMNS = ["dataset", "property", "unit", "model", "config", "default", "pretrained", "subset", "device", "seeds",
           "failed", "id_rmse", "id_rmse_sd", "id_rmse_ci_lo", "id_rmse_ci_hi", "ood_rmse", "ood_rmse_sd",
           "ood_rmse_ci_lo", "ood_rmse_ci_hi", "tied_best", "best", "ood_rmse_diff_lo", "ood_rmse_diff_hi",
           "id_mae", "id_mae_ci_lo", "id_mae_ci_hi", "ood_mae", "ood_mae_ci_lo", "ood_mae_ci_hi", "id_r2", "ood_r2",
           "ood_id_ratio", "ood_nll", "ood_coverage_68", "ood_coverage_95", "ood_miscalibration_area",
           "ood_spearman_abs_err_std", "n_id", "n_ood", "config_id", "config_full", "newest", "reason"]


def mean_sd(values: list[float]) -> tuple[float, float]:
    """Mean and sample sd; sd is NaN (blank) for fewer than two values, both NaN for none."""
    values = [v for v in values if v is not None]
    if not values:
        return math.nan, math.nan
    m = sum(values) / len(values)
    if len(values) < 2:
        return m, math.nan
    return m, math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1))


def _mean(values: list[Optional[float]]) -> float:
    return mean_sd(values)[0]


def _split_values(rows_ok: list[Run], split: str, name: str) -> list[Optional[float]]:
    return [getattr(getattr(r.scores, split), name) for r in rows_ok]


def _reason(run: Run) -> str:
    rec = run.record
    if rec.status == RunStatus.OK:  # recorded as a success, but its scores.json is gone or unreadable
        return f"ok, but {run.folder / 'scores.json'} is missing or invalid (rerun with --force)"
    return f"{rec.status.value}: {rec.reason}"


def table(rows: list[Row]) -> list[dict]:
    """One dict per row with the COLUMNS (plain numbers; NaN where a value is undefined or missing)."""
    out = []
    for r in rows:
        ok, st = r.ok, r.stats
        d: dict[str, Any] = {
            "dataset": r.dataset, "property": r.property, "unit": PROPERTIES[r.property].unit, "model": r.model,
            "config": config_short(r.config), "default": is_default(r.config), "pretrained": pretrained_of(r),
            "subset": r.config.subset or "full", "device": r.config.device, "seeds": len(ok),
            "failed": len(r.failed), "config_id": r.config.config_id, "config_full": r.config.full(),
            "newest": max((x.record.finished_at for x in r.runs), default=""),
            "reason": _reason(r.failed[-1]) if r.failed else "",
        }
        for split in ("id", "ood"):
            for metric in ("rmse", "mae"):
                m, sd = mean_sd(_split_values(ok, split, metric))
                d[f"{split}_{metric}"] = m
                if metric == "rmse":
                    d[f"{split}_rmse_sd"] = sd
                for end in ("lo", "hi"):
                    d[f"{split}_{metric}_ci_{end}"] = st.get(f"{split}_{metric}_ci_{end}", math.nan)
            d[f"{split}_r2"] = _mean(_split_values(ok, split, "r2"))
            d[f"n_{split}"] = getattr(ok[0].scores, split).n if ok else math.nan
        d["ood_id_ratio"] = _mean([x.scores.ood_id_rmse_ratio for x in ok])
        for name in ("nll", "coverage_68", "coverage_95", "miscalibration_area", "spearman_abs_err_std"):
            d[f"ood_{name}"] = st.get(f"ood_{name}", math.nan)
        d["tied_best"] = st.get("tied_best")
        d["best"] = st.get("best")
        d["ood_rmse_diff_lo"] = st.get("ood_rmse_diff_lo", math.nan)
        d["ood_rmse_diff_hi"] = st.get("ood_rmse_diff_hi", math.nan)
        out.append(d)
    return out


def leaderboard_frame(root: Optional[Path] = None):
    """The leaderboard as a pandas DataFrame: one row per configuration x task, the COLUMNS of leaderboard.csv."""
    import pandas as pd

    return pd.DataFrame(table(collect(root)), columns=COLUMNS)


RUN_COLUMNS = ["run_id", "dataset", "property", "model", "seed", "status", "reason", "counted", "config",
               "config_id", "default", "pretrained", "hyperparameters", "smoke", "subset", "device", "model_sha256",
               "split_sha256", "runner", "started_at", "finished_at", "wall_s", "peak_memory_mb", "n_parameters",
               "ood_id_ratio", "folder"]
_RUN_METRICS = ("n", "rmse", "rmse_ci_lo", "rmse_ci_hi", "mae", "mae_ci_lo", "mae_ci_hi", "r2", "spearman",
                "max_error", "mean_y_std", "nll", "coverage_68", "coverage_95", "miscalibration_area",
                "spearman_abs_err_std")


def runs_frame(root: Optional[Path] = None):
    """Every run of the results tree as a pandas DataFrame: one row per run, all settings and metrics.

    ``counted`` says whether the run is the one its configuration's seed counts on the leaderboard.
    """
    import pandas as pd

    runs = all_runs(root)
    counted = {id(x) for row in _rows(runs) for x in row.ok + row.failed}
    configs = _configs(runs)
    metric_cols = [f"{s}_{m}" for s in ("id", "ood") for m in _RUN_METRICS]
    out = []
    for run in sorted(runs, key=lambda x: (x.record.dataset, x.record.property, x.record.model, x.record.finished_at)):
        rec, sc = run.record, run.scores
        cfg = configs[id(run)]
        d: dict[str, Any] = {
            "run_id": rec.run_id, "dataset": rec.dataset, "property": rec.property, "model": rec.model,
            "seed": rec.seed, "status": rec.status.value, "reason": rec.reason or "", "counted": id(run) in counted,
            "config": config_short(cfg), "config_id": cfg.config_id, "default": is_default(cfg),
            "pretrained": (rec.model_report.pretrained or FROM_SCRATCH) if rec.model_report else "",
            "hyperparameters": cfg.hyperparameters, "smoke": cfg.smoke, "subset": rec.subset or "full",
            "device": rec.device, "model_sha256": rec.model_sha256, "split_sha256": rec.split_sha256,
            "runner": rec.runner, "started_at": rec.started_at, "finished_at": rec.finished_at, "wall_s": rec.wall_s,
            "peak_memory_mb": rec.peak_memory_mb, "n_parameters": rec.n_parameters,
            "ood_id_ratio": sc.ood_id_rmse_ratio if sc else math.nan, "folder": str(run.folder),
        }
        for split in ("id", "ood"):
            part = getattr(sc, split) if sc else None
            for m in _RUN_METRICS:
                v = getattr(part, m, None) if part is not None else None
                d[f"{split}_{m}"] = math.nan if v is None else v
        out.append(d)
    return pd.DataFrame(out, columns=RUN_COLUMNS[:-2] + metric_cols + RUN_COLUMNS[-2:])


# ---------------------------------------------------------------------------------------------------
# Markdown and CSV
# ---------------------------------------------------------------------------------------------------

def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _fmt(v: Any, sd: Any = None) -> str:
    if _missing(v):
        return "—"
    if isinstance(v, float) and math.isinf(v):
        return "∞" if v > 0 else "−∞"
    text = f"{v:.4g}"
    return text if _missing(sd) else f"{text} ± {sd:.2g}"


def _ci(d: dict, name: str) -> str:
    lo, hi = d[f"{name}_ci_lo"], d[f"{name}_ci_hi"]
    return "" if _missing(lo) or _missing(hi) else f"[{lo:.4g}, {hi:.4g}]"


def _tie(d: dict) -> str:
    return {True: "best" if d.get("best") else "tied", False: "no"}.get(d["tied_best"], "—")


def markdown(rows: list[dict]) -> str:
    lines = ["| property | model | config | pretrained | seeds | ID RMSE | OOD RMSE | OOD 95% CI | tied with best "
             "| OOD/ID | OOD R² | failures |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        fail = f"{r['failed']} ({r['reason'][:80]})" if r["failed"] else "0"
        config = r["config"] + (" ★" if r["default"] else "")
        lines.append(
            f"| {r['property']} ({r['unit']}) | {r['model']} | {config} | {r['pretrained']} | {r['seeds']} | "
            f"{_fmt(r['id_rmse'], r['id_rmse_sd'])} | {_fmt(r['ood_rmse'], r['ood_rmse_sd'])} | {_ci(r, 'ood_rmse')} | "
            f"{_tie(r)} | {_fmt(r['ood_id_ratio'])} | {_fmt(r['ood_r2'])} | {fail} |"
        )
    return "\n".join(lines) + "\n"


def _csv_value(v: Any) -> Any:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return repr(v) if isinstance(v, float) else v


def write_csv(path: Path, rows: list[dict], columns: list[str]) -> Path:
    import csv

    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=columns, lineterminator="\n")
        w.writeheader()
        w.writerows({c: _csv_value(r.get(c)) for c in columns} for r in rows)
    return path


MD_HEAD = ("# BOOM-TTE leaderboard\n\nOne row per configuration and task (★: the model's default configuration). "
           "RMSE in each property's unit, mean ± sd over seeds (no sd for one seed); OOD 95% CI: molecule bootstrap; "
           "tied with best: the paired bootstrap interval of the OOD RMSE difference to the task's best row contains 0 "
           "(docs/leaderboard.md).\n\n")


# ---------------------------------------------------------------------------------------------------
# Figures: the OOD heatmap and the extrapolation view
# ---------------------------------------------------------------------------------------------------

HEATMAP = "leaderboard_ood_heatmap.png"


def _task_label(row: Row) -> str:
    return row.property + (f" ({row.test_set})" if row.test_set else "")


def _row_label(row: Row) -> str:
    return row.model if is_default(row.config) else f"{row.model} [{config_short(row.config)}]"


def heatmap_grid(rows: list[Row]) -> tuple[list[str], list[str], Any, set[tuple[int, int]]]:
    """(row labels, task labels, mean OOD RMSE grid with NaN where no seed succeeded, cells with only failures)."""
    import numpy as np

    tasks = list(dict.fromkeys(_task_label(r) for r in rows))
    labels = sorted({_row_label(r) for r in rows})
    grid = np.full((len(labels), len(tasks)), np.nan)
    failed = set()
    for r in rows:
        i, j = labels.index(_row_label(r)), tasks.index(_task_label(r))
        if r.ok:
            grid[i, j] = mean_sd([s.scores.ood.rmse for s in r.ok])[0]
        elif r.failed:
            failed.add((i, j))
    return labels, tasks, grid, failed


def heatmap(rows: list[Row], path: Path) -> Optional[Path]:
    """Configuration x task heatmap of OOD RMSE divided by the task's best row (1 = best); None when empty."""
    from boom.plots import ood_heatmap

    labels, tasks, grid, failed = heatmap_grid(rows)
    if not tasks or not labels:
        return None
    return ood_heatmap(path, labels, tasks, grid, failed)


def extrapolation_name(row: Row) -> str:
    return f"extrapolation_{row.property}{'_' + row.test_set if row.test_set else ''}.png"


def extrapolation_figures(rows: list[Row], out_dir: Path) -> dict[tuple, Path]:
    """task -> PNG of OOD |error| against the distance of each label outside the training label range."""
    from boom import evidence
    from boom.plots import extrapolation_plot

    out: dict[tuple, Path] = {}
    by_task: dict[tuple, list[Row]] = {}
    for r in rows:
        if r.evidence is not None:
            by_task.setdefault(r.task, []).append(r)
    for task, task_rows in by_task.items():
        _, prop, test_set = task
        labels = evidence.task_labels(prop, int(test_set[1:]) if test_set else None)
        ood = task_rows[0].evidence["ood"]
        bins = evidence.extrapolation_bins(ood.y_true, labels.train_y)
        series = [(_row_label(r), evidence.binned_abs_error(r.evidence["ood"].errors, bins)) for r in task_rows]
        info = PROPERTIES[prop]
        path = out_dir / extrapolation_name(task_rows[0])
        out[task] = extrapolation_plot(path, f"{_task_label(task_rows[0])}: OOD |error| by distance outside the "
                                             f"training range", info.unit, bins, series)
    return out


# ---------------------------------------------------------------------------------------------------
# Static HTML page (open from disk: every link is relative to the page's folder; plain-JS sorting)
# ---------------------------------------------------------------------------------------------------

_SORT_JS = """<script>
for (const table of document.querySelectorAll("table.leaderboard")) {
  table.querySelectorAll("thead th").forEach((th, col) => {
    th.addEventListener("click", () => {
      const body = table.tBodies[0], rows = Array.from(body.rows);
      const dir = th.dataset.dir === "asc" ? -1 : 1;
      th.dataset.dir = dir === 1 ? "asc" : "desc";
      const key = (row) => {
        const cell = row.cells[col];
        if (cell.dataset.v === undefined) return cell.textContent;
        return cell.dataset.v === "" ? Infinity : parseFloat(cell.dataset.v);
      };
      rows.sort((a, b) => {
        const x = key(a), y = key(b);
        const c = typeof x === "number" && typeof y === "number" ? (x === y ? 0 : x < y ? -1 : 1)
                                                                 : String(x).localeCompare(String(y));
        return c * dir;
      });
      rows.forEach((row) => body.appendChild(row));
    });
  });
}
// ?sort=NAME sorts every table by the column NAME on load (?sort=-NAME: descending), for shareable links
const wanted = new URLSearchParams(location.search).get("sort");
if (wanted) {
  const name = wanted.replace(/^-/, "");
  for (const th of document.querySelectorAll("table.leaderboard thead th")) {
    if (th.textContent === name) { th.click(); if (wanted.startsWith("-")) th.click(); }
  }
}
</script>"""


def project_commit() -> str:
    """The checkout's commit (short, '+dirty' when the tree has changes), or 'unknown' outside a git checkout."""
    import subprocess

    try:
        root = str(paths.repo_root())
        sha = subprocess.run(["git", "-C", root, "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True,
                             timeout=20).stdout.strip()
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError, RuntimeError):
        return "unknown"
    return (sha + ("+dirty" if dirty else "")) if sha else "unknown"


def _num(v: Any, sd: Any = None) -> str:
    """A numeric cell: shown formatted, sorted by its value (missing values sort last)."""
    data = "" if _missing(v) else repr(float(v)).replace("inf", "Infinity")  # JS parseFloat reads 'Infinity'
    return f"<td data-v=\"{data}\">{_html.escape(_fmt(v, sd))}</td>"


def _html_notes_and_heatmap(notes: list[str], heatmap_name: Optional[str]) -> list[str]:
    """The notes list and the heatmap image, when there are any (each one line of the page)."""
    esc = _html.escape
    parts = []
    if notes:
        parts.append("<ul id=\"notes\">" + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>")
    if heatmap_name:
        parts.append(f"<h2>OOD RMSE, normalised per task</h2><img id=\"heatmap\" src=\"{esc(heatmap_name)}\" "
                     "alt=\"configuration x task heatmap of OOD RMSE normalised per task\">")
    return parts


_HTML_HEADER = ("<table class=\"leaderboard\"><thead><tr><th>model</th><th>config</th><th>pretrained</th>"
                "<th>seeds</th><th>ID RMSE</th><th>OOD RMSE</th><th>OOD 95% CI</th><th>tied with best</th>"
                "<th>OOD/ID</th><th>ID MAE</th><th>OOD MAE</th><th>ID R²</th><th>OOD R²</th>"
                "<th>OOD NLL</th><th>OOD cov. 95%</th><th>newest run</th><th>failures</th><th>parity plots</th>"
                "</tr></thead><tbody>")


def _html_task(task: tuple[str, str, Optional[str]], row_lines: list[str], figure: Optional[str]) -> list[str]:
    """One task's section: heading, table of its (ranked) rows, and its extrapolation figure when there is one."""
    esc = _html.escape
    _, prop, test_set = task
    info = PROPERTIES[prop]
    label = f"{prop} ({info.dataset}{', test subset ' + test_set if test_set else ''})"
    anchor = f"task-{prop}{'-' + test_set if test_set else ''}"
    parts = [f"<h2 id=\"{esc(anchor)}\">{esc(label)}, {esc(info.unit)}</h2>", _HTML_HEADER, *row_lines,
             "</tbody></table>"]
    if figure:
        parts.append(f"<img class=\"fig extrapolation\" src=\"{esc(figure)}\" "
                     f"alt=\"OOD error by distance outside the training range, {esc(label)}\">")
    return parts


def _html_row(d: dict, parity: list[tuple[int, str]]) -> str:
    """One table row from a `table` dict: a row with no successful seed is a failure row (class 'fail')."""
    esc = _html.escape
    thumbs = "".join(
        f"<a href=\"{esc(link)}\"><img class=\"thumb\" src=\"{esc(link)}\" "
        f"alt=\"parity {esc(d['model'])} {esc(d['property'])} seed {seed}\"></a>" for seed, link in parity)
    fails = f"{d['failed']}: {esc(d['reason'][:160])}" if d["failed"] else "0"
    tip = ("" if _missing(d["ood_rmse_diff_lo"]) else
           f" title=\"OOD RMSE − best: [{d['ood_rmse_diff_lo']:.4g}, {d['ood_rmse_diff_hi']:.4g}]\"")
    star = " ★" if d["default"] else ""
    return (f"<tr class=\"{'ok' if d['seeds'] else 'fail'}\"><td class=\"l\">{esc(d['model'])}</td>"
            f"<td class=\"l config\" title=\"{esc(d['config_full'])}\">{esc(d['config'])}{star}</td>"
            f"<td class=\"l\">{esc(d['pretrained'])}</td><td data-v=\"{d['seeds']}\">{d['seeds']}</td>"
            f"{_num(d['id_rmse'], d['id_rmse_sd'])}{_num(d['ood_rmse'], d['ood_rmse_sd'])}"
            f"<td data-v=\"{'' if _missing(d['ood_rmse_ci_lo']) else repr(d['ood_rmse_ci_lo'])}\">"
            f"{esc(_ci(d, 'ood_rmse'))}</td>"
            f"<td class=\"l{' tied' if d['tied_best'] else ''}\"{tip}>{esc(_tie(d))}</td>"
            f"{_num(d['ood_id_ratio'])}{_num(d['id_mae'])}{_num(d['ood_mae'])}{_num(d['id_r2'])}{_num(d['ood_r2'])}"
            f"{_num(d['ood_nll'])}{_num(d['ood_coverage_95'])}<td class=\"l\">{esc(d['newest'])}</td>"
            f"<td class=\"l\">{fails}</td><td class=\"l thumbs\">{thumbs}</td></tr>")


def html_page(rows: list[Row], out_dir: Path, notes: list[str], parity: dict[tuple, list[tuple[int, str]]],
              figures: dict[tuple, str], heatmap_name: Optional[str] = None) -> str:
    """The leaderboard as one static HTML page (no external resources)."""
    from datetime import datetime, timezone

    esc = _html.escape
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
        "<title>BOOM-TTE leaderboard</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}"
        "table{border-collapse:collapse;margin-bottom:1em}th,td{border:1px solid #ccc;padding:3px 7px;"
        "font-size:13px;text-align:right}th{background:#eef;cursor:pointer}td.l{text-align:left}tr.fail td{color:#a00}"
        "td.tied{background:#e6f4e6}td.thumbs{white-space:nowrap}img.thumb{width:120px;border:1px solid #ddd;margin:1px}"
        "img.fig{max-width:720px}h2{margin-top:1.4em}.meta{color:#555}</style></head><body>",
        "<h1>BOOM-TTE leaderboard</h1>",
        f"<p class=\"meta\" id=\"meta\">Generated {esc(stamp)} from project commit <code>{esc(project_commit())}</code>.</p>",
        "<p>One row per configuration and task (hover a configuration for all its settings; ★ the model's default "
        "configuration). ID and OOD metrics are means over seeds ± sample sd (no sd for one seed), in the "
        "property's unit; OOD 95% CI: molecule bootstrap of the mean-over-seeds RMSE; tied: the paired bootstrap "
        "interval of the OOD RMSE difference to the task's best row contains 0. Click a column to sort. "
        "Failed seeds are counted with their reason.</p>",
    ]
    parts.extend(_html_notes_and_heatmap(notes, heatmap_name))
    if not rows:
        parts.append("<p id=\"empty\">No runs yet: <code>boom run</code> or <code>boom matrix</code> first.</p>")
    by_task: dict[tuple, list[Row]] = {}
    for r in rows:
        by_task.setdefault(r.task, []).append(r)
    dicts = {id(r): d for r, d in zip(rows, table(rows))}
    for task, task_rows in by_task.items():
        ranked = sorted(task_rows, key=lambda r: (dicts[id(r)]["ood_rmse"] if r.ok else math.inf, r.model))
        parts.extend(_html_task(task, [_html_row(dicts[id(r)], parity.get(id(r), [])) for r in ranked],
                                figures.get(task)))
    parts.append(_SORT_JS)
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# ---------------------------------------------------------------------------------------------------
# The README's results block
# ---------------------------------------------------------------------------------------------------

README_BEGIN, README_END = "<!-- results:begin -->", "<!-- results:end -->"


def readme_table(rows: list[dict], link: str) -> str:
    """Configurations x properties, OOD RMSE of each (mean over seeds); bold the task's best, italics tied with it."""
    props = [p for p in PROPERTIES if any(r["property"] == p and r["seeds"] for r in rows)]
    lines: dict[tuple, dict] = {}
    for r in rows:
        if not r["seeds"] or r["property"] not in props:
            continue
        cell = _fmt(r["ood_rmse"])
        cell = f"**{cell}**" if r.get("best") else f"*{cell}*" if r.get("tied_best") else cell
        key = (r["model"], r["config"] + (" ★" if r["default"] else ""), r["pretrained"])
        lines.setdefault(key, {})[r["property"]] = cell + ("" if r["seeds"] == 1 else f" ({r['seeds']} seeds)")
    head = "| model | config | pretrained | " + " | ".join(f"{p} ({PROPERTIES[p].unit})" for p in props) + " |"
    out = [f"OOD RMSE per task, mean over seeds; **bold**: the task's best row, *italics*: statistically tied with "
           f"it (paired bootstrap, docs/leaderboard.md); ★ the model's default configuration. Intervals, ID "
           f"metrics and failures: [{link}]({link}).", "", head, "|" + "---|" * (3 + len(props))]
    for (model, config, pretrained), cells in sorted(lines.items()):
        out.append(f"| {model} | {config} | {pretrained} | " + " | ".join(cells.get(p, "") for p in props) + " |")
    return "\n".join(out) + "\n"


def _readme_parts(readme: Path) -> tuple[str, str]:
    """The text before the begin marker and after the end marker; a one-line error when they are not there."""
    try:
        text = readme.read_text()
    except OSError as exc:
        raise ValueError(f"{readme}: cannot read the README ({exc.strerror or exc})") from None
    if text.count(README_BEGIN) != 1 or text.count(README_END) != 1 or text.index(README_BEGIN) > text.index(README_END):
        raise ValueError(f"{readme}: needs one '{README_BEGIN}' line and one '{README_END}' line after it "
                         "around the results block")
    head, rest = text.split(README_BEGIN, 1)
    return head, rest.split(README_END, 1)[1]


def fill_readme(readme: Path, rows: list[dict], leaderboard_md: Path) -> Path:
    """Replace the block between the results markers of ``readme`` with :func:`readme_table`."""
    import os

    head, tail = _readme_parts(readme)
    link = os.path.relpath(leaderboard_md, readme.parent)
    readme.write_text(f"{head}{README_BEGIN}\n{readme_table(rows, link)}{README_END}{tail}")
    return readme


# ---------------------------------------------------------------------------------------------------
# Writing: into the results tree (boom report), or a self-contained export (boom report --out DIR)
# ---------------------------------------------------------------------------------------------------

RUNS_DIR = "runs"
_EXPORT_MARK = ".written-by-boom-report"


def _export_runs(rows: list[Row], out_dir: Path) -> dict[int, list[tuple[int, str]]]:
    """Copy each counted run's record, scores, gzipped predictions and parity plot under ``out_dir/runs``."""
    import gzip
    import shutil

    from boom_schema import limits
    from boom import runfiles
    from boom.evidence import GZ_NAME

    target = out_dir / RUNS_DIR
    if target.exists() or target.is_symlink():
        if target.is_symlink() or not (target / _EXPORT_MARK).is_file():
            raise ValueError(f"{target} exists and was not written by 'boom report'; choose another --out or remove it")
        shutil.rmtree(target)  # runs no longer counted must not linger
    target.mkdir(parents=True)
    (target / _EXPORT_MARK).write_text("boom report --out writes this folder; it is replaced on every export\n")
    parity: dict[int, list[tuple[int, str]]] = {}
    for row in rows:
        for run in row.runs:
            rec = run.record
            dest = target / rec.dataset / rec.property / rec.model / rec.run_id
            dest.mkdir(parents=True, exist_ok=True)
            caps = {"record.json": limits.RECORD_MAX_BYTES, "scores.json": limits.SCORES_MAX_BYTES}
            for name, cap in caps.items():
                data = runfiles.read_bytes(run.folder / name, cap)
                if data is not None:
                    runfiles.write_atomic(dest / name, data)
            if run.ok:
                n = run.scores.id.n + run.scores.ood.n
                pred = runfiles.read_bytes(run.folder / "predictions.csv", limits.predictions_max_bytes(n))
                if pred is None:  # an exported run read back: already gzipped
                    packed = runfiles.read_bytes(run.folder / GZ_NAME, limits.predictions_max_bytes(n))
                else:
                    packed = gzip.compress(pred, compresslevel=9, mtime=0)  # same bytes on every export
                if packed is not None:
                    runfiles.write_atomic(dest / GZ_NAME, packed)
                png = runfiles.read_bytes(run.folder / "parity.png", 16 << 20)
                if png is not None:
                    runfiles.write_atomic(dest / "parity.png", png)
                    parity.setdefault(id(row), []).append((rec.seed, str((dest / "parity.png").relative_to(out_dir))))
    return parity


def _parity_links(rows: list[Row], out_dir: Path) -> dict[int, list[tuple[int, str]]]:
    """Links to the counted runs' own parity plots (the runs the numbers come from)."""
    import os

    from boom import runfiles

    return {id(r): [(x.record.seed, os.path.relpath(x.folder / "parity.png", out_dir)) for x in r.ok
                    if runfiles.is_regular(x.folder / "parity.png")] for r in rows}


def write(out_dir: Optional[Path] = None, root: Optional[Path] = None,
          readme: Optional[Path] = None) -> tuple[str, list[Path]]:
    """Write leaderboard.md, .csv, .html and the figures; return the Markdown and the written paths (files; the
    ``runs`` folder of an export as one entry).

    Without ``out_dir`` they go into the results tree and link to its run folders.  With ``out_dir`` the export
    is self-contained: each counted run's record, scores, gzipped predictions and parity plot are copied under
    ``out_dir/runs/`` (replaced on every export), so ``boom report --out leaderboard`` regenerates the results
    of record.  ``readme``: also fill that README's results block (:func:`fill_readme`).
    """
    if readme is not None:
        _readme_parts(readme)  # a README without its markers fails before anything is written
    export = out_dir is not None
    if export:
        source, target = (root or paths.results_dir()).resolve(), (out_dir / RUNS_DIR).resolve()
        if source == target or target in source.parents:
            raise ValueError(f"the runs are read from {source}, inside {target}, which the export replaces; "
                             "export to another --out folder")
    out_dir = out_dir or paths.results_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, notes = load(root)
    dicts = table(rows)
    md = markdown(dicts)
    notes_md = "".join(f"- {n}\n" for n in notes)
    md_path = out_dir / "leaderboard.md"
    md_path.write_text(MD_HEAD + md + (f"\nNotes:\n\n{notes_md}" if notes else ""))
    csv_path = write_csv(out_dir / "leaderboard.csv", dicts, COLUMNS)
    written = [md_path, csv_path]
    if export:
        parity = _export_runs(rows, out_dir)
        written.append(out_dir / RUNS_DIR)  # the counted runs' files, one folder per run
    else:
        parity = _parity_links(rows, out_dir)
    png = heatmap(rows, out_dir / HEATMAP)
    for old in out_dir.glob("extrapolation_*.png"):  # a task no longer on the board leaves no figure behind
        old.unlink()
    figures = extrapolation_figures(rows, out_dir)
    page = out_dir / "leaderboard.html"
    page.write_text(html_page(rows, out_dir, notes, parity, {t: p.name for t, p in figures.items()},
                              HEATMAP if png is not None else None))
    written += [page, *([png] if png is not None else []), *figures.values()]
    if readme is not None:
        written.append(fill_readme(readme, dicts, md_path))
    return md, written

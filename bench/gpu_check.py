"""GPU readiness check: every torch model's real entry point on CUDA at its default configuration, time-boxed.

For each torch model and each probe task (qm9 ``mu`` and 10k_csd ``hof``: the two datasets' molecule sizes)
this runs ``boom.orchestrate.run`` through the local runner with ``--device cuda``, the model's default
(paper) hyperparameters, a seeded subset of the task (``--subset``: N train molecules, N/4 of each test
split) and ``epochs`` overridden to a small number, so each run is a bounded number of optimiser steps.
A failure is a row with its one-line reason and the check goes on.  Per run it records, from the run's
``record.json`` (``model_report.accelerator``, written by ``boom_kit.accelerator``): status, whether the
tensors really were on the GPU (parameters seen on cuda and CUDA memory allocated), the precision that
ran, seconds per 1000 training molecules per epoch (the last, steady-state epoch: the first pays CUDA
start-up), peak GPU memory, and extrapolates the GPU-hours of one full default run of every task (default
epochs, the real train-set sizes of the pinned splits) and of the whole matrix.

Every run gets at most ``--per-run-s`` and the whole check ``--budget-s``: models run on ``mu`` first,
then on ``hof``, so a check that runs out of time still has every model once.

On the GPU machine (one H200, 10-minute command; see docs/gpu.md).  Prepare here first, once:

    .venv/bin/python bench/gpu_check.py --prepare   # wheels into .whl/, slim data into bench/out/gpu_check/data.tar.gz

then one command there, carrying [".whl", "bench/out/gpu_check/data.tar.gz"]:

    tar -xzf bench/out/gpu_check/data.tar.gz -C bench/out/gpu_check && python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD/core:$PWD/schema:$PWD/models/_kit BOOM_HOME=$PWD BOOM_DATA_DIR=$PWD/bench/out/gpu_check/data PYTHONUNBUFFERED=1 || exit; python3 bench/gpu_check.py --device cuda --out $OUT --budget-s 480

CPU rehearsal of the same code path (smoke-sized models, tiny subsets; what CI runs for a few models):

    .venv/bin/python bench/gpu_check.py --device cpu --tiny
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

REPO = Path(__file__).resolve().parents[1]
TORCH_MODELS = ("mlp", "chemprop", "mace", "gnn-topological", "gnn-invariant", "egnn", "et", "graphormer3d",
                "chemberta", "molformer", "modernbert", "regression-transformer", "nl-mtp")
PROBES = ("mu", "hof")  # one task per dataset: qm9 (<= 9 heavy atoms) and 10k_csd (larger CHNO molecules)
TASKS = ("density", "hof", "mu", "alpha", "homo", "lumo", "gap", "r2", "zpve", "cv")
NO_DEVICE = "not run: no device"

# How each model's precision is decided (the table says so; `precision` is a model.yaml hyperparameter
# only where the kit's training loop owns the steps).
PRECISION_SUPPORT = {
    "chemprop": "fp32 only: chemprop's Lightning trainer runs its own loop (no precision setting wired)",
    "mace": "fp32/fp64 (its dtype): mace-torch/e3nn code is not autocast-safe, no bf16 option",
    "chemberta": "bf16 autocast on CUDA always (the kit's fine_tune), fp32 on CPU",
    "molformer": "bf16 autocast on CUDA always (the kit's fine_tune), fp32 on CPU",
    "modernbert": "bf16 autocast on CUDA always (the kit's fine_tune), fp32 on CPU",
    "regression-transformer": "bf16 autocast on CUDA always (its own code), fp32 on CPU",
}
SUPPORTS_PRECISION = "yes: --set precision=bf16 (autocast in the kit's training loop; default fp32)"

# Python packages the models import that the H200 image lacks (KINDS.md) or has at another version: they
# travel as cp312 wheels (docs/gpu.md).  Versions are the ones this project's venv runs.  Left out on purpose:
# aimsim_core (astartes imports it only inside try/except; with it come padelpy's 20 MB and mordred) and
# python-hostlist (no wheel; mace imports it only for Slurm-distributed training).
WHEELS = (
    "rdkit==2026.3.6", "pydantic==2.14.4", "pydantic_core==2.50.5", "annotated-types==0.8.0",
    "typing-inspection==0.4.5", "typing_extensions==4.16.0", "chemprop==2.3.1", "astartes==1.3.3",
    "descriptastorus==2.8.0", "cuik_molmaker_pin==2026.3.6", "multiprocess==0.70.19", "dill==0.4.1",
    "pandas-flavor==0.8.1",
    "ConfigArgParse==1.9.0", "mace-torch==0.3.16", "e3nn==0.4.4", "torch-ema==0.3", "ase==3.29.0",
    "matscipy==1.3.1", "prettytable==3.18.0", "wcwidth==0.9.4", "lmdb==3.0.0",
    "orjson==3.13.0", "GitPython==3.2.1", "gitdb==4.0.12", "smmap==5.0.3", "selfies==2.2.0",
)
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_24_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux1_x86_64", "manylinux_2_31_x86_64", "manylinux_2_34_x86_64")
PREPARED = REPO / "bench" / "out" / "gpu_check"


@dataclass
class Row:
    """One (model, probe task) run of the check."""

    model: str
    prop: str
    status: str
    error: Optional[str] = None
    on_gpu: Optional[bool] = None
    device: Optional[str] = None
    device_name: Optional[str] = None
    parameter_devices: list[str] = field(default_factory=list)
    precision: Optional[str] = None
    peak_gpu_mb: Optional[float] = None
    peak_rss_mb: Optional[float] = None
    n_train: int = 0
    n_test: int = 0
    epochs_run: Optional[int] = None
    epoch_s: list[float] = field(default_factory=list)
    s_per_1000_per_epoch: Optional[float] = None
    overhead_s_per_mol: Optional[float] = None
    featurise_s: Optional[float] = None
    train_s: Optional[float] = None
    predict_s: Optional[float] = None
    wall_s: Optional[float] = None
    run_dir: Optional[str] = None


# ------------------------------------------------------------------------------------------------ runs


def _first_line(text: Any) -> str:
    lines = str(text).strip().splitlines()
    return lines[0][:300] if lines else type(text).__name__


def measure(model: str, prop: str, device: str, subset: int, epochs: int, threads: int, timeout_s: int,
            tiny: bool, precision: Optional[str]) -> Row:
    """Run one model on one task through the orchestrator and read what its record says."""
    from boom.options import RunOptions
    from boom import orchestrate, registry
    from boom.runners.local import LocalRunner

    overrides = {"epochs": str(epochs)}
    if precision and "precision" in registry.get(model).spec.defaults:
        overrides["precision"] = precision
    try:
        out = orchestrate.run(model, prop, LocalRunner(), RunOptions(
            overrides=overrides, subset=subset, device=device, threads=threads, timeout_s=timeout_s, force=True,
            smoke=tiny))
    except Exception as exc:  # a setup error (bad data, unknown hyperparameter) is a row too
        return Row(model, prop, "failed", error=f"{type(exc).__name__}: {_first_line(exc)}")
    rec = out.record
    row = Row(model, prop, rec.status.value, error=rec.reason, wall_s=rec.wall_s, peak_rss_mb=rec.peak_memory_mb,
              run_dir=str(out.folder))
    task = json.loads((out.folder / "task.json").read_text())
    row.n_train = _count_rows(Path(task["input_dir"]) / task["files"]["train"])
    row.n_test = _count_rows(Path(task["input_dir"]) / task["files"]["test"])
    rep = rec.model_report
    if rep is None:
        return row
    t = rep.timings
    row.featurise_s, row.train_s, row.predict_s, row.epochs_run = t.featurise_s, t.train_s, t.predict_s, t.epochs
    acc = rep.accelerator or {}
    row.device, row.device_name = acc.get("device"), acc.get("name")
    row.parameter_devices = list(acc.get("parameter_devices") or [])
    row.precision = acc.get("precision")
    row.peak_gpu_mb = acc.get("peak_memory_mb")
    row.epoch_s = [float(s) for s in acc.get("epoch_s") or []]
    row.on_gpu = bool(row.device and row.device.startswith("cuda") and (row.peak_gpu_mb or 0) > 0
                      and all(d.startswith("cuda") for d in row.parameter_devices))
    steady = row.epoch_s[-1] if len(row.epoch_s) >= 2 else t.per_epoch_s
    if steady and row.n_train:
        row.s_per_1000_per_epoch = round(steady / row.n_train * 1000.0, 4)
    fixed = (t.featurise_s or 0.0) + (t.predict_s or 0.0)
    if row.n_train + row.n_test:
        row.overhead_s_per_mol = round(fixed / (row.n_train + row.n_test), 6)
    return row


def _count_rows(path: Path) -> int:
    with open(path) as fh:
        return max(0, sum(1 for _ in fh) - 1)


# ------------------------------------------------------------------------------------- extrapolation


def split_sizes() -> dict[str, dict[str, int]]:
    """Molecules per split of every task's pinned split: from the prepared data, else ``split_sizes.json`` there."""
    import pandas as pd
    from boom import paths
    from boom_schema import PROPERTIES

    root = paths.data_dir()
    cached = root / "split_sizes.json"
    sizes = json.loads(cached.read_text()) if cached.exists() else {}
    for prop in TASKS:
        f = root / PROPERTIES[prop].dataset / "splits" / f"{prop}.csv"
        if f.exists():
            sizes[prop] = {k: int(v) for k, v in pd.read_csv(f, usecols=["split"])["split"].value_counts().items()}
    return sizes


def extrapolate(rows: list[Row], sizes: dict[str, dict[str, int]], models: list[str]) -> dict[str, Any]:
    """Hours of one full default run per (model, task): default epochs x full train set, plus fixed costs.

    Train time scales with training molecules and epochs (s per 1000 molecules per epoch of the probe on
    the same dataset); featurisation and prediction scale with the task's molecules.  Early stopping
    (mlp, mace: patience) can only shorten a run, so those are upper bounds.
    """
    from boom import registry
    from boom_schema import PROPERTIES

    probe_of = {PROPERTIES[p].dataset: p for p in PROBES}
    by_key = {(r.model, r.prop): r for r in rows}
    table: dict[str, dict[str, Optional[float]]] = {}
    totals: dict[str, Optional[float]] = {}
    epochs_of: dict[str, int] = {}
    for model in models:
        epochs = epochs_of[model] = int(registry.get(model).spec.defaults.get("epochs", 1))
        cells: dict[str, Optional[float]] = {}
        for prop in TASKS:
            r = by_key.get((model, probe_of.get(PROPERTIES[prop].dataset, "")))
            n = sizes.get(prop)
            if r is None or r.status != "ok" or r.s_per_1000_per_epoch is None or not n:
                cells[prop] = None
                continue
            train_s = r.s_per_1000_per_epoch / 1000.0 * n.get("train", 0) * epochs
            fixed_s = (r.overhead_s_per_mol or 0.0) * sum(n.values())
            cells[prop] = round((train_s + fixed_s) / 3600.0, 4)
        table[model] = cells
        vals = [v for v in cells.values() if v is not None]
        totals[model] = round(sum(vals), 3) if len(vals) == len(TASKS) else None
    complete = [v for v in totals.values() if v is not None]
    return {"hours": table, "model_total": totals, "matrix_total": round(sum(complete), 2),
            "models_in_total": [m for m, v in totals.items() if v is not None],
            "epochs": epochs_of}


# ---------------------------------------------------------------------------------------------- report


def _fmt(v: Any, nd: int = 3) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.{nd}g}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


def render(meta: dict, rows: list[Row], extra: dict, models: list[str]) -> str:
    gpu = meta["device"] == "cuda"
    lines = [f"# GPU check: {'CUDA run on ' + meta['device_name'] if gpu else 'CPU REHEARSAL (no GPU measured)'}", ""]
    lines += [f"Written by `bench/gpu_check.py` on {meta['date']} (commit {meta['commit']}), device `{meta['device']}`"
              f" ({meta['device_name']}), torch {meta['torch']}, Python {meta['python']}.  Settings: "
              f"{'smoke-sized models (model.yaml `smoke`), ' if meta['tiny'] else 'default (paper) hyperparameters, '}"
              f"subset {meta['subset']} train molecules (and {max(10, meta['subset'] // 4)} of each test split), "
              f"{meta['epochs']} epochs, {meta['threads']} CPU threads, precision request `{meta['precision'] or 'model default'}`"
              f", time box {meta['per_run_s']} s per run / {meta['budget_s']} s in all; the check took {meta['elapsed_s']:.0f} s.", ""]
    if not gpu:
        lines += ["This is the CPU rehearsal of the check's code path, **not a GPU measurement**: every GPU column says "
                  f"\"{NO_DEVICE}\". The s/1000 mol/epoch column is CPU time of the smoke-sized models; "
                  "the GPU-hours of the default runs are unknown until the check runs on a GPU "
                  "(command in docs/gpu.md).", ""]
    lines += ["## Per run", "",
              "| model | task | status | tensors on GPU | device | precision | s / 1000 mol / epoch | peak GPU MB | "
              "peak RSS MB | epochs (s each) | wall s | error |", "|" + "---|" * 12]
    for r in rows:
        on_gpu = ("yes" if r.on_gpu else "no") if gpu else NO_DEVICE
        peak = _fmt(r.peak_gpu_mb) if gpu else NO_DEVICE
        ep = ", ".join(f"{s:.3g}" for s in r.epoch_s) if r.epoch_s else _fmt(r.epochs_run)
        err = (r.error or "").replace("|", "/")[:160]
        lines.append(f"| {r.model} | {r.prop} | {r.status} | {on_gpu} | {r.device or '—'} | {r.precision or '—'} | "
                     f"{_fmt(r.s_per_1000_per_epoch)} | {peak} | {_fmt(r.peak_rss_mb)} | {ep} | {_fmt(r.wall_s)} | {err} |")
    lines += ["", "## Precision", "", "| model | bf16 |", "|---|---|"]
    lines += [f"| {m} | {PRECISION_SUPPORT.get(m, SUPPORTS_PRECISION)} |" for m in models]
    unit = "GPU-hours" if gpu else "CPU-hours of the smoke-sized rehearsal models (not GPU-hours)"
    lines += ["", f"## Extrapolated {unit} of one full default run per task", "",
              "Default epochs of each model.yaml x the pinned split's train molecules x the probe's s / 1000 mol / epoch "
              "(qm9 tasks from `mu`, 10k_csd tasks from `hof`), plus featurisation and prediction per molecule. "
              "Early stopping (mlp, mace) can only shorten a run.", ""]
    if not gpu:
        lines += [f"GPU-hours: **{NO_DEVICE}**. The numbers below only show that the extrapolation works; "
                  "they are not the default configuration.", ""]
    lines += ["| model | epochs | " + " | ".join(TASKS) + " | total |", "|" + "---|" * (len(TASKS) + 3)]
    for m in models:
        cells = extra["hours"].get(m, {})
        lines.append(f"| {m} | {extra['epochs'][m]} | " + " | ".join(_fmt(cells.get(p)) for p in TASKS)
                     + f" | {_fmt(extra['model_total'].get(m))} |")
    n = len(extra["models_in_total"])
    if gpu:
        lines += ["", f"Whole matrix (one seed, the {n} models with a complete row): "
                  f"**{extra['matrix_total']} GPU-hours**.", ""]
    else:  # no headline figure: smoke-sized models on a CPU say nothing about the real matrix's cost
        lines += ["", f"Sum over the {n} complete rows: {extra['matrix_total']} (smoke-sized models on one CPU thread; "
                  "a check of the extrapolation's arithmetic, not an estimate of any real run's cost).", ""]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------- prepare


def prepare(subset: int, workers: int) -> None:
    """Here, before a GPU session: the task folders of the probes, a slim data folder and the wheels.

    The slim folder holds only what ``boom.data.tasks.build`` reads for the probe tasks (molecules.csv,
    the probe splits, the built task folders with their geometries), so the GPU machine neither needs the
    raw data nor computes conformers; ``split_sizes.json`` carries every task's split sizes.
    """
    from boom import paths
    from boom.data import tasks
    from boom_schema import PROPERTIES

    sizes = split_sizes()
    src = paths.data_dir()
    dst = PREPARED / "data"
    if dst.exists():
        shutil.rmtree(dst)
    for prop in PROBES:
        ds = PROPERTIES[prop].dataset
        for geometry in (False, True):
            data = tasks.build(prop, subset=subset, with_geometry=geometry, workers=workers)
            shutil.copytree(data.input_dir, dst / "tasks" / data.input_dir.name)
        (dst / ds / "splits").mkdir(parents=True, exist_ok=True)
        shutil.copy2(src / ds / "manifest.json", dst / ds / "manifest.json")
        shutil.copy2(src / ds / "splits" / f"{prop}.csv", dst / ds / "splits" / f"{prop}.csv")
        import pandas as pd

        mols = pd.read_csv(src / ds / "molecules.csv", dtype={"mol_id": str, "smiles": str})
        mols[["mol_id", "smiles", prop]].to_csv(dst / ds / "molecules.csv", index=False, float_format="%.17g")
    (dst / "split_sizes.json").write_text(json.dumps(sizes, indent=2))
    archive = shutil.make_archive(str(PREPARED / "data"), "gztar", root_dir=PREPARED, base_dir="data")
    wheels = REPO / ".whl"
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version", "3.12",
           "--implementation", "cp", *[a for p in PLATFORMS for a in ("--platform", p)], "-d", str(wheels), *WHEELS]
    subprocess.run(cmd, check=True)
    mb = sum(f.stat().st_size for f in wheels.glob("*.whl")) / 2**20
    data_mb = Path(archive).stat().st_size / 2**20
    print(f"prepared: {archive} ({data_mb:.1f} MiB, unpacks to {dst}), {wheels} ({mb:.1f} MiB); "
          f"carry both (64 MiB in all with the working tree)")


# ---------------------------------------------------------------------------------------------- main


def _commit() -> str:
    try:
        return subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def parse_args(argv: Optional[list[str]] = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    ap.add_argument("--tiny", action="store_true", help="CPU rehearsal: smoke-sized models, tiny subsets.")
    ap.add_argument("--models", default=",".join(TORCH_MODELS), help="Comma-separated models (default: every torch model).")
    ap.add_argument("--props", default=",".join(PROBES), help="Probe tasks (default: mu,hof).")
    ap.add_argument("--subset", type=int, default=None, help="Train molecules per run (default 2000; --tiny 40).")
    ap.add_argument("--epochs", type=int, default=2, help="Epochs per run; the last one is timed (default 2).")
    ap.add_argument("--precision", choices=("fp32", "bf16"), default=None,
                    help="Set precision on every model that declares it (default: its model.yaml value).")
    ap.add_argument("--bf16-also", default="", help="Comma-separated models run a second time with precision=bf16.")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads per run (default: 8 on cuda, 1 on cpu).")
    ap.add_argument("--per-run-s", type=int, default=None, help="Time box of one run (default 90; --tiny 120).")
    ap.add_argument("--budget-s", type=int, default=480, help="Time box of the whole check (default 480).")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results", help="Where gpu.md and gpu.json go.")
    ap.add_argument("--work", type=Path, default=None, help="Results folder of the runs (default: a temporary one).")
    ap.add_argument("--prepare", action="store_true", help="Prepare the GPU session here (data and wheels), then exit.")
    args = ap.parse_args(argv)
    args.subset = args.subset or (40 if args.tiny else 2000)
    args.threads = args.threads or (8 if args.device == "cuda" else 1)
    args.per_run_s = args.per_run_s or (120 if args.tiny else 90)
    if args.tiny and args.device == "cuda":
        ap.error("--tiny is the CPU rehearsal: use it with --device cpu")
    if args.subset < 20:
        ap.error(f"--subset {args.subset}: use at least 20 train molecules (a validation slice must remain)")
    if args.epochs < 1:
        ap.error("--epochs must be at least 1")
    return args


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    if args.prepare:
        prepare(args.subset, max(1, os.cpu_count() or 1))
        return 0
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in TORCH_MODELS]
    if unknown:
        raise SystemExit(f"error: {unknown} are not torch models of this check; choose from {', '.join(TORCH_MODELS)}")
    props = [p.strip() for p in args.props.split(",") if p.strip()]
    bad = [p for p in props if p not in TASKS]
    if bad:
        raise SystemExit(f"error: unknown task(s) {bad}; choose from {', '.join(TASKS)}")
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda but torch sees no CUDA GPU; rehearse with --device cpu --tiny")
    work = args.work or Path(tempfile.mkdtemp(prefix="gpu_check_"))
    os.environ["BOOM_RESULTS_DIR"] = str(work)
    bf16_also = [m.strip() for m in args.bf16_also.split(",") if m.strip()]
    plan = [(m, p, args.precision) for p in props for m in models] + [(m, props[0], "bf16") for m in bf16_also]
    started = time.perf_counter()
    rows: list[Row] = []
    for model, prop, precision in plan:
        left = args.budget_s - (time.perf_counter() - started)
        label = model if precision != "bf16" or model not in bf16_also else f"{model} (bf16)"
        if left < 15:
            rows.append(Row(label, prop, "not run", error=f"time budget of {args.budget_s} s spent"))
            continue
        print(f"[{time.perf_counter() - started:5.0f} s] {label} {prop} ...", flush=True)
        row = measure(model, prop, args.device, args.subset, args.epochs, args.threads,
                      int(min(args.per_run_s, left)), args.tiny, precision)
        row.model = label
        rows.append(row)
        print(f"        {row.status} on_gpu={row.on_gpu} s/1000/epoch={row.s_per_1000_per_epoch} "
              f"peak_gpu_mb={row.peak_gpu_mb} {row.error or ''}", flush=True)
    elapsed = time.perf_counter() - started
    sizes = split_sizes()
    extra = extrapolate([r for r in rows if r.model in models], sizes, models)
    meta = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "commit": _commit(),
            "device": args.device, "device_name": torch.cuda.get_device_name(0) if args.device == "cuda" else
            (platform.processor() or platform.machine()), "torch": torch.__version__, "python": platform.python_version(),
            "tiny": args.tiny, "subset": args.subset, "epochs": args.epochs, "threads": args.threads,
            "precision": args.precision, "per_run_s": args.per_run_s, "budget_s": args.budget_s,
            "elapsed_s": round(elapsed, 1), "split_sizes": sizes, "gpu_columns": None if args.device == "cuda" else NO_DEVICE}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu.json").write_text(json.dumps({"meta": meta, "rows": [asdict(r) for r in rows],
                                                  "extrapolation": extra}, indent=2) + "\n")
    text = render(meta, rows, extra, models)
    (args.out / "gpu.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

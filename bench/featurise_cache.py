"""Benchmark: the shared feature cache (``boom_kit.feature_cache``), featurising cold vs warm.

Two measurements, each against a fresh, empty cache folder (never the user's):

- ``density``: the random forest at its defaults on the full density task through the local runner,
  once with the empty cache (cold: every descriptor computed and stored) and once more (warm: read back).
  Records the model report's featurise/train/total seconds and whether the two runs' predictions are
  byte-identical.
- ``qm9``: the descriptor pipeline of rf and mlp (``train_test_descriptors``) on every one of QM9's
  130,831 molecules for one property (cold), then for a second property (warm: the same molecules split
  differently, so every row comes from the cache).

Everything at one thread (``OMP_NUM_THREADS=1``, ``threads=1``, one featuriser worker): the machine
has 2 shared cores.  Usage: ``python bench/featurise_cache.py density|qm9|report`` (each measurement
merges its numbers into ``bench/results/featurise_cache.json``; ``report`` writes the Markdown).
"""
from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "results"
JSON = OUT / "featurise_cache.json"


def _machine() -> dict:
    import rdkit

    return {"python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(), "rdkit": rdkit.__version__, "threads": 1,
            "load_avg_at_start": [round(x, 2) for x in os.getloadavg()]}


def _merge(section: str, numbers: dict) -> None:
    data = json.loads(JSON.read_text()) if JSON.exists() else {}
    data[section] = {**numbers, "machine": _machine(), "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    OUT.mkdir(parents=True, exist_ok=True)
    JSON.write_text(json.dumps(data, indent=2) + "\n")


def bench_density() -> dict:
    """rf on full density, cold then warm cache, through the local runner (the real path of a run)."""
    from boom.options import RunOptions
    from boom.orchestrate import run
    from boom.runners.local import LocalRunner

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["BOOM_FEATURE_CACHE"] = str(Path(tmp) / "cache")
        os.environ["BOOM_RESULTS_DIR"] = str(Path(tmp) / "results")
        predictions = []
        for label in ("cold", "warm"):
            started = time.perf_counter()
            outcome = run("rf", "density", LocalRunner(), RunOptions(threads=1, force=True))
            wall = time.perf_counter() - started
            if outcome.record.status.value != "ok":
                raise SystemExit(f"rf density ({label}) failed: {outcome.record.reason}")
            report = json.loads((outcome.folder / "model_report.json").read_text())
            predictions.append((outcome.folder / "predictions.csv").read_bytes())
            t = report["timings"]
            out[label] = {"featurise_s": round(t["featurise_s"], 2), "train_s": round(t["train_s"], 2),
                          "predict_s": round(t["predict_s"], 2), "model_total_s": round(t["total_s"], 2),
                          "run_wall_s": round(wall, 2),
                          "notes": [n for n in report.get("notes", []) if "feature cache" in n]}
            print(label, out[label], flush=True)
        out["n_molecules"] = outcome.scores.id.n + outcome.scores.ood.n + _n_train(outcome.folder)
        out["predictions_byte_identical"] = predictions[0] == predictions[1]
        out["cache_bytes"] = sum(p.stat().st_size for p in (Path(tmp) / "cache").rglob("*.seg"))
    return out


def _n_train(folder: Path) -> int:
    import pandas as pd

    task = json.loads((folder / "task.json").read_text())
    return len(pd.read_csv(Path(task["input_dir"]) / "train.csv", usecols=["mol_id"]))


def _qm9_split(prop: str):
    import pandas as pd
    from boom import paths

    root = paths.data_dir() / "qm9"
    mols = pd.read_csv(root / "molecules.csv", usecols=["mol_id", "smiles"], dtype=str)
    split = pd.read_csv(root / "splits" / f"{prop}.csv", usecols=["mol_id", "split"], dtype=str)
    df = mols.merge(split, on="mol_id", validate="one_to_one")
    return df.loc[df.split == "train", "smiles"].tolist(), df.loc[df.split != "train", "smiles"].tolist()


def bench_qm9() -> dict:
    """All of QM9 through ``train_test_descriptors``: property mu with an empty cache, then gap."""
    from boom_kit.feature_cache import FeatureCache
    from boom_kit.featurise.descriptors import train_test_descriptors

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        cache = FeatureCache(Path(tmp) / "cache")
        for label, prop in (("cold", "mu"), ("warm", "gap")):
            train, test = _qm9_split(prop)
            notes: list[str] = []
            started = time.perf_counter()
            X_train, X_test, columns = train_test_descriptors(train, test, workers=1, note=notes.append, cache=cache)
            seconds = time.perf_counter() - started
            out[label] = {"property": prop, "n_train": len(train), "n_test": len(test), "seconds": round(seconds, 2),
                          "ms_per_molecule": round(1e3 * seconds / (len(train) + len(test)), 3),
                          "n_features": len(columns.names), "notes": notes}
            print(label, out[label], flush=True)
        out["cache_bytes"] = sum(p.stat().st_size for p in (Path(tmp) / "cache").rglob("*.seg"))
        out["saved_per_extra_property_s"] = round(out["cold"]["seconds"] - out["warm"]["seconds"], 1)
    return out


def _section(title: str, intro: str, header: str, cold: str, warm: str, summary: str) -> list[str]:
    """One benchmark's markdown: heading, intro line, a two-row cold/warm table and the summary line."""
    separator = "|" + "---|" * (header.count("|") - 1)
    return [title, "", intro, "", header, separator, f"| cold (empty) | {cold} |", f"| warm | {warm} |", "", summary, ""]


def report() -> Path:
    data = json.loads(JSON.read_text())
    lines = ["# Feature cache: featurising cold vs warm", "",
             "Generated by `bench/featurise_cache.py` from `featurise_cache.json` (same folder). One thread "
             "throughout (`OMP_NUM_THREADS=1`, `threads=1`, one featuriser worker) on a 2-core machine shared "
             "with other work; each measurement starts from an empty cache folder.", ""]
    d = data.get("density")
    if d:
        c, w = d["cold"], d["warm"]
        row = "{featurise_s} | {train_s} | {predict_s} | {model_total_s} | {run_wall_s}"
        lines += _section(
            "## rf on density, full data (local runner, seed 0, 500 trees)",
            f"{d['n_molecules']} molecules (train + ID + OOD); cache after the cold run: "
            f"{d['cache_bytes'] / 2**20:.1f} MiB. Load average at start: {d['machine']['load_avg_at_start']}.",
            "| cache | featurise s | train s | predict s | model total s | run wall s |",
            row.format(**c), row.format(**w),
            f"Featurising {c['featurise_s'] / max(w['featurise_s'], 1e-9):.0f}x faster warm; predictions "
            f"of the two runs byte-identical: **{d['predictions_byte_identical']}**.")
    q = data.get("qm9")
    if q:
        c, w = q["cold"], q["warm"]
        row = "{property} | {n_train} + {n_test} | {seconds} | {ms_per_molecule}"
        lines += _section(
            "## QM9, all 130,831 molecules (`train_test_descriptors`, one worker)",
            f"Cache after the cold pass: {q['cache_bytes'] / 2**20:.1f} MiB. Load average at start: "
            f"{q['machine']['load_avg_at_start']}.",
            "| pass | property | train + test | seconds | ms / molecule |",
            row.format(**c), row.format(**w),
            f"Each further qm9 property or seed of rf or mlp saves about {q['saved_per_extra_property_s']:.0f} s "
            f"of featurising at one thread; the eight properties need the cold pass once instead of eight times.")
    path = OUT / "featurise_cache.md"
    path.write_text("\n".join(lines))
    return path


def main(argv: list[str]) -> int:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    what = argv[1] if len(argv) > 1 else ""
    if what == "density":
        _merge("density", bench_density())
    elif what == "qm9":
        _merge("qm9", bench_qm9())
    elif what != "report":
        print("usage: featurise_cache.py density|qm9|report", file=sys.stderr)
        return 2
    print(f"wrote {report()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

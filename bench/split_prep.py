"""Benchmark: preparing BOOM's splits from the raw sources (the reference took 88 min for QM9's 8).

Runs ``prepare(dataset, force=True)`` into a temporary data folder, several times, and records the
wall-clock of each dataset (loading, 8 KDEs, split draws, writing files and manifest) together with
the machine it ran on.  Results: ``bench/results/split_prep.json`` and a Markdown summary.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
OUT = Path(__file__).resolve().parent / "results"


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["BOOM_DATA_DIR"] = tmp
        from boom.data.prepare import prepare

        timings: dict[str, list[float]] = {"10k_csd": [], "qm9": []}
        cpu: dict[str, list[float]] = {"10k_csd": [], "qm9": []}
        phases: dict[str, list[dict[str, float]]] = {"10k_csd": [], "qm9": []}
        for _ in range(REPEATS):
            for dataset in timings:
                started, started_cpu = time.perf_counter(), time.process_time()
                manifest = prepare(dataset, force=True)
                timings[dataset].append(time.perf_counter() - started)
                phases[dataset].append(manifest["phase_seconds"])
                cpu[dataset].append(time.process_time() - started_cpu)
    result = {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "platform": platform.platform(),
                    "load_avg_at_end": os.getloadavg()},
        "repeats": REPEATS,
        "seconds": timings,
        "cpu_seconds": cpu,
        "median_s": {k: statistics.median(v) for k, v in timings.items()},
        "phase_seconds": phases,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "split_prep.json").write_text(json.dumps(result, indent=2))
    lines = ["| dataset | splits | median wall s | median CPU s | median load / splits / write s | runs, wall (s) |",
             "|---|---|---|---|---|---|"]
    for k, v in timings.items():
        phase = " / ".join(f"{statistics.median(p[name] for p in phases[k]):.1f}" for name in ("load", "splits", "write"))
        lines.append(f"| {k} | {2 if k == '10k_csd' else 8} | {statistics.median(v):.1f} | "
                     f"{statistics.median(cpu[k]):.1f} | {phase} | {', '.join(f'{x:.1f}' for x in v)} |")
    lines.append("\nload: parsing the source files; splits: the KDEs, the ID/OOD/train draws and the pinned-digest "
                 "checks; write: the molecule table, geometries (qm9), split files and their digests.")
    lines.append(f"\nLoad average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores.")
    (OUT / "split_prep.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

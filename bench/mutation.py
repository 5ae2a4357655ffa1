"""Mutation score of the unit tests (``make mutation``): mutmut (requirements/mutation.txt) over one module at a time.

mutmut 2.x mutates files in place, so the run happens in a private copy of the checkout (tracked and untracked,
git-ignored paths and the wheelhouses left out) with that copy's ``schema``, ``core`` and ``models/_kit`` first on
PYTHONPATH: the shared checkout, and everyone's tests in it, never see a mutant.  Each module is mutated against
the unit tests that cover it (a mutant the covering tests do not kill is a test gap); the result is written to
``bench/results/mutation.md`` (score per module, every surviving mutant's diff).

    .venv/bin/python bench/mutation.py                 # every module in MODULES
    .venv/bin/python bench/mutation.py --only scoring  # one (or a comma list)
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "results" / "mutation.md"
STORE = REPO / "bench" / "results" / "mutation"  # one JSON per module, so `--only` updates one row of the report
#: name -> (file to mutate, pytest arguments of the unit tests that cover it)
MODULES: dict[str, tuple[str, str]] = {
    "scoring": ("core/boom/scoring.py", "tests/test_metrics.py"),
    "kit.scaling": ("models/_kit/boom_kit/scaling.py", "tests/test_kit_safeguards.py"),
    "kit.splitting": ("models/_kit/boom_kit/splitting.py", "tests/test_kit_safeguards.py"),
    "kit.torch_loop": ("models/_kit/boom_kit/torch_loop.py", "tests/test_kit_safeguards.py"),
    "matrix": ("core/boom/matrix.py", "tests/test_matrix.py -k 'cells or seed_lists or without_running' tests/test_seeds.py -m 'not model'"),
    # the split definition without the prepared datasets (each of those tests prepares qm9: minutes per mutant)
    "data.splits": ("core/boom/data/splits.py", "tests/test_splits.py -k '(sums or draws or tie or round_trip or digest or boundary or kde or portable or stream) and not 10k_split'"),
    "schema.predictions": ("schema/boom_schema/predictions.py", "tests/test_predictions_contract.py"),
    "schema.spec": ("schema/boom_schema/spec.py", "tests/test_schema.py"),
}
SKIP_PARTS = (".venv", ".git", "wheels", "wheels-torch", "__pycache__", ".mutmut-cache", "build")
SKIP_TOP = ("data", "results", "leaderboard")  # prepared datasets and run folders at the root (core/boom/data is code)


def _copy_tree(dest: Path) -> None:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, text=True,
                           check=True).stdout.splitlines()
    for rel in files:
        parts = Path(rel).parts
        if (parts[0] in SKIP_TOP or any(p in SKIP_PARTS or p.startswith("wheels") for p in parts)
                or not (REPO / rel).is_file()):
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, dest / rel)


def _env(copy: Path) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "CI": os.environ.get("CI", ""),
           "PYTHONPATH": os.pathsep.join(str(copy / p) for p in ("schema", "core", "models/_kit")),
           "BOOM_HOME": str(copy), "PYTHONDONTWRITEBYTECODE": "1"}
    env.setdefault("BOOM_RAW_DIR", str(REPO.parent / "shared" / "data" / "llnl-chno-10k"))
    return env


def _check_imports(copy: Path, env: dict[str, str]) -> None:
    """The copy's packages must be the ones imported, or every mutant would 'survive' against the checkout."""
    code = "import boom, boom_schema, boom_kit; print(boom.__file__, boom_schema.__file__, boom_kit.__file__)"
    out = subprocess.run([sys.executable, "-c", code], cwd=copy, env=env, capture_output=True, text=True, check=True).stdout
    if any(not p.startswith(str(copy)) for p in out.split()):
        raise SystemExit(f"mutation: the copy's packages are not the ones imported ({out.strip()}); check PYTHONPATH")


def _ids(copy: Path, env: dict[str, str], kind: str) -> list[str]:
    out = subprocess.run([sys.executable, "-m", "mutmut", "result-ids", kind], cwd=copy, env=env, capture_output=True,
                         text=True).stdout
    return [t for t in out.split() if t.isdigit()]


def run_module(name: str, copy: Path, env: dict[str, str]) -> dict:
    target, tests = MODULES[name]
    (copy / ".mutmut-cache").unlink(missing_ok=True)
    runner = f"{sys.executable} -m pytest -x -q -p no:cacheprovider -p no:randomly {tests}"
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "mutmut", "run", "--paths-to-mutate", target, "--tests-dir", "tests",
                           "--runner", runner, "--no-progress", "--simple-output"],
                          cwd=copy, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    counts = {k: _ids(copy, env, k) for k in ("killed", "survived", "timeout", "suspicious", "untested")}
    if not any(counts.values()):
        raise SystemExit(f"mutation: mutmut produced no results for {name}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    diffs = {i: subprocess.run([sys.executable, "-m", "mutmut", "show", i], cwd=copy, env=env, capture_output=True,
                               text=True).stdout.strip() for i in counts["survived"] + counts["suspicious"]}
    total = sum(len(v) for v in counts.values())
    killed = len(counts["killed"]) + len(counts["timeout"])  # a mutant that hangs the tests is caught
    print(f"{name}: {killed}/{total} killed ({seconds:.0f} s)", flush=True)
    row = {"name": name, "target": target, "tests": tests, "counts": counts, "diffs": diffs, "total": total,
            "killed": killed, "seconds": round(seconds, 1)}
    STORE.mkdir(parents=True, exist_ok=True)
    (STORE / f"{name}.json").write_text(json.dumps(row, indent=1))
    return row


def write_report(rows: list[dict], notes: str) -> None:
    total = sum(r["total"] for r in rows)
    killed = sum(r["killed"] for r in rows)
    lines = ["# Mutation score of the unit tests", "",
             f"mutmut 2.5.1 (`make mutation`, bench/mutation.py), one module at a time against the unit tests that "
             f"cover it, on {os.cpu_count()} shared cores. Written by bench/mutation.py; the notes below it by hand.", "",
             f"**Overall: {killed}/{total} killed ({100 * killed / max(1, total):.1f}%).**", "",
             "| module | file | tests | mutants | killed | survived | score | seconds |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        surv = len(r["counts"]["survived"]) + len(r["counts"]["suspicious"])
        lines.append(f"| {r['name']} | `{r['target']}` | `{r['tests']}` | {r['total']} | {r['killed']} | {surv} | "
                     f"{100 * r['killed'] / max(1, r['total']):.0f}% | {r['seconds']:.0f} |")
    lines += ["", "## Surviving mutants", ""]
    for r in rows:
        for i, diff in r["diffs"].items():
            lines += [f"### {r['name']} #{i}", "", "```diff", re.sub(r"\n{2,}", "\n", diff), "```", ""]
    if notes:
        lines += ["## Notes", "", notes.strip(), ""]
    OUT.write_text("\n".join(lines))
    print(f"wrote {OUT}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", help=f"comma list of modules ({', '.join(MODULES)})")
    ap.add_argument("--notes", type=Path, default=REPO / "bench" / "mutation_notes.md",
                    help="a Markdown file appended as the Notes section (default bench/mutation_notes.md)")
    ap.add_argument("--report-only", action="store_true", help="rewrite mutation.md from the stored results only")
    args = ap.parse_args()
    names = args.only.split(",") if args.only else list(MODULES)
    unknown = [n for n in names if n not in MODULES]
    if unknown:
        raise SystemExit(f"mutation: unknown module(s) {unknown}; choose from {', '.join(MODULES)}")
    if not args.report_only:
        with tempfile.TemporaryDirectory(prefix="boom-mutation-") as tmp:
            copy = Path(tmp)
            _copy_tree(copy)
            env = _env(copy)
            _check_imports(copy, env)
            for n in names:
                run_module(n, copy, env)
    rows = [json.loads((STORE / f"{n}.json").read_text()) for n in MODULES if (STORE / f"{n}.json").exists()]
    write_report(rows, args.notes.read_text() if args.notes and args.notes.exists() else "")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Mutation score of the unit tests (``make mutation``): each module's mutants against the unit tests covering it.

Mutants are mutmut 2.5.1's (requirements/mutation.txt; its operators via ``mutmut.list_mutations`` / ``mutate``, so
ids and diffs are the ones ``mutmut show`` prints).  They run in a private copy of the checkout (tracked and
untracked files, git-ignored paths and the wheelhouses left out) with that copy's ``schema``, ``core`` and
``models/_kit`` first on PYTHONPATH: the shared checkout, and everyone's tests in it, never see a mutant.

The default engine (``fork``) starts one worker per module that imports pytest, numpy, pandas, torch... once and runs
the covering tests unmutated; then, per mutant, it writes the mutant into the copy and forks: the child drops the
copy's modules (``boom*``, ``boom_schema*``, ``boom_kit*``, ``tests.*``) from ``sys.modules`` and runs
``pytest.main`` on the covering tests, so only our own code is imported again.  A mutant is killed when the tests
fail, or when they run past the timeout (a hang is caught).  ``--engine mutmut2`` runs ``mutmut run`` instead (one
new pytest process per mutant, ~10x slower here), kept to cross-check the fork engine.  Results: one JSON per module
in ``bench/results/mutation/`` and ``bench/results/mutation.md`` (score per module, every surviving mutant's diff).

    .venv/bin/python bench/mutation.py                 # every module in MODULES
    .venv/bin/python bench/mutation.py --only scoring  # one (or a comma list)
"""
from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import select
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench" / "results" / "mutation.md"
STORE = REPO / "bench" / "results" / "mutation"  # one JSON per module, so `--only` updates one row of the report
#: name -> (file to mutate, pytest arguments of the unit tests that cover it)
MODULES: dict[str, tuple[str, str]] = {
    "scoring": ("core/boom/scoring.py", "tests/test_metrics.py"),
    "kit.scaling": ("models/_kit/boom_kit/scaling.py", "tests/test_kit_safeguards.py"),
    "kit.splitting": ("models/_kit/boom_kit/splitting.py", "tests/test_kit_safeguards.py"),
    "kit.torch_loop": ("models/_kit/boom_kit/torch_loop.py", "tests/test_kit_safeguards.py"),
    # cells, seeds and the matrix loop without models, and resume (failed / timed-out cells rerun) with fixture models
    "matrix": ("core/boom/matrix.py", "tests/test_matrix.py -k 'cells or seed_lists or thread_division or without_running or crashes_messages' tests/test_seeds.py tests/test_resume.py -m 'not model'"),
    # the split definition without the prepared datasets (each of those tests prepares qm9: minutes per mutant)
    "data.splits": ("core/boom/data/splits.py", "tests/test_splits.py -k '(sums or draws or tie or round_trip or digest or boundary or kde or portable or stream) and not 10k_split'"),
    "schema.predictions": ("schema/boom_schema/predictions.py", "tests/test_predictions_contract.py"),
    "schema.spec": ("schema/boom_schema/spec.py", "tests/test_schema.py"),
    "intervals": ("core/boom/intervals.py", "tests/test_intervals.py"),
    "uncertainty": ("core/boom/uncertainty.py", "tests/test_uncertainty.py"),
    # run_id / run_dir (test_seeds) and read_scores (test_metrics); the record readers' hostile-output tests run models
    # the leaderboard, export, extrapolation and HTML page from fabricated and fixture-model runs
    "report": ("core/boom/report.py", "tests/test_report_formats.py tests/test_leaderboard.py tests/test_report_html.py -m 'not model' -k 'not chromium'"),
    "results": ("core/boom/results.py", "tests/test_results_tree.py tests/test_seeds.py -m 'not model' tests/test_metrics.py"),
}
#: modules whose tests only read the prepared datasets: their worker prepares them once (BOOM_TEST_DATA_DIR, see
#: tests/conftest.py) instead of once per mutant.  Not data.splits: its mutants must reach the preparation.
SHARED_DATA = {"report", "matrix", "results"}
SKIP_PARTS = (".venv", ".git", "wheels", "wheels-torch", "__pycache__", ".mutmut-cache", "build")
SKIP_TOP = ("data", "results")  # prepared datasets and run folders at the root (core/boom/data is code); the
#: committed leaderboard/ is copied: tests check the export it holds


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


KINDS = ("killed", "survived", "timeout", "suspicious", "untested")  # mutmut's result kinds
OWN = ("boom", "boom_schema", "boom_kit", "tests", "conftest")  # top-level modules imported again per mutant


def mutants(source: str, filename: str) -> list[tuple[str, str, int]]:
    """(mutated source, unified diff, 1-based line) of every mutant mutmut 2 makes of ``source``, in ``mutmut run``'s
    id order."""
    from mutmut import Context, list_mutations, mutate

    found = []
    for mutation_id in list_mutations(Context(source=source, filename=filename)):
        mutated, performed = mutate(Context(source=source, filename=filename, mutation_id=mutation_id))
        if performed:
            diff = difflib.unified_diff(source.split("\n"), mutated.split("\n"), fromfile=filename, tofile=filename,
                                        lineterm="")
            found.append((mutated, "\n".join(diff), mutation_id.line_number + 1))
    return found


def _bodies(source: str) -> list[tuple[int, int, int]]:
    """(first line, first body line, last line) of each outermost function, 1-based.  A mutant on a body line can
    only change what a test sees if that test calls the function; the other lines (module and class level, a
    ``def`` line with its defaults, decorators, a docstring) run at import, so every test covers them."""
    import ast

    found: list[tuple[int, int, int]] = []

    def walk(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = child.body[1:] if ast.get_docstring(child, clean=False) is not None else child.body
                first = min([child.lineno] + [d.lineno for d in child.decorator_list])
                found.append((first, body[0].lineno if body else child.end_lineno + 1, child.end_lineno))
            else:
                walk(child)

    walk(ast.parse(source))
    return found


class _Coverage:
    """pytest plugin: which tests call each function of one file.  A call made while a fixture is set up counts for
    every test that requests that fixture (a session fixture's value is seen by all of them); a call made outside
    any test (at collection) makes that function's mutants run against every test."""

    def __init__(self, path: Path, bodies: list[tuple[int, int, int]]) -> None:
        self.file, self.bodies = os.path.realpath(path), bodies
        self.by_function: dict[int, set[str]] = {}  # first line of a function -> node ids of the tests calling it
        self.by_fixture: dict[str, set[int]] = {}  # fixture name -> functions called while setting it up
        self.requesting: dict[str, set[str]] = {}  # fixture name -> node ids of the tests requesting it
        self.always: set[int] = set()
        self.test: str | None = None
        self.fixtures: list[str] = []

    def _trace(self, frame, event, arg):  # noqa: ANN001 -- sys.settrace's signature
        if event == "call" and frame.f_code.co_filename == self.file:
            line = frame.f_code.co_firstlineno
            for first, _, last in self.bodies:
                if first <= line <= last:
                    if self.fixtures:
                        self.by_fixture.setdefault(self.fixtures[-1], set()).add(first)
                    if self.test:
                        self.by_function.setdefault(first, set()).add(self.test)
                    if not self.test and not self.fixtures:
                        self.always.add(first)
                    break
        return None

    def pytest_sessionstart(self) -> None:
        import threading

        sys.settrace(self._trace)
        threading.settrace(self._trace)

    def pytest_sessionfinish(self) -> None:
        import threading

        sys.settrace(None)
        threading.settrace(None)  # type: ignore[arg-type]

    def pytest_runtest_protocol(self, item, nextitem):  # noqa: ANN001
        self.test = item.nodeid
        for name in getattr(item, "fixturenames", []):
            self.requesting.setdefault(name, set()).add(item.nodeid)

    def pytest_runtest_logfinish(self) -> None:
        self.test = None

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(self, fixturedef, request):  # noqa: ANN001
        self.fixtures.append(fixturedef.argname)
        try:
            return (yield)
        finally:
            self.fixtures.pop()

    def covering(self, line: int) -> set[str] | None:
        """Node ids of the tests to run for a mutant on ``line`` (1-based); None: all of them."""
        for first, body, last in self.bodies:
            if body <= line <= last and first not in self.always:
                tests = set(self.by_function.get(first, set()))
                for fixture, called in self.by_fixture.items():
                    if first in called:
                        tests |= self.requesting.get(fixture, set())
                return tests or None  # called by no test in this process (a subprocess may call it): run them all
        return None


class _Select:
    """pytest plugin: keep only the given node ids (after -k / -m)."""

    def __init__(self, keep: set[str]) -> None:
        self.keep = keep

    def pytest_collection_modifyitems(self, items, config):  # noqa: ANN001
        items[:] = [i for i in items if i.nodeid in self.keep]


def _purge() -> None:
    """Forget the copy's modules (ours, the tests, model folders), so the next import reads the files again."""
    root = str(REPO) + os.sep
    for key, module in list(sys.modules.items()):
        if key != "__main__" and (key.split(".")[0] in OWN or (getattr(module, "__file__", None) or "").startswith(root)):
            del sys.modules[key]


def _forked(args: list[str], timeout: float, plugins: list | None = None) -> tuple[int | None, float]:
    """pytest.main(args) in a forked child, its output discarded: (exit code, or None past the timeout; seconds)."""
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # child: a fresh import of our code on top of the parent's third-party modules
        code = 3
        try:
            os.setpgid(0, 0)
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.dup2(null, 2)
            _purge()
            code = int(pytest.main(args, plugins=plugins or []))
        finally:
            os._exit(code)
    try:
        os.setpgid(pid, pid)
    except OSError:  # the child did it first, or already exited
        pass
    fd = os.pidfd_open(pid)
    done = bool(select.select([fd], [], [], timeout)[0])
    if not done:  # the whole group: a test may have started a subprocess
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return (os.waitstatus_to_exitcode(status) if done else None), time.perf_counter() - started


def sample_ids(population: int, size: int | None, seed: int = 0) -> list[int]:
    """1-based ids of the mutants to run: all of them, or a seeded simple random sample of ``size`` (a module with
    hundreds of mutants and slow tests is estimated from a sample; its row says so and gives the interval)."""
    import random

    if size is None or size >= population:
        return list(range(1, population + 1))
    return sorted(random.Random(seed).sample(range(1, population + 1), size))


def score_interval(killed: int, n: int) -> tuple[float, float]:
    """Clopper-Pearson 95% interval of the kill rate from ``killed`` of ``n`` sampled mutants."""
    from scipy.stats import beta

    lo = beta.ppf(0.025, killed, n - killed + 1) if killed > 0 else 0.0
    hi = beta.ppf(0.975, killed + 1, n - killed) if killed < n else 1.0
    return float(lo), float(hi)


def worker(name: str, result: Path, all_tests: bool = False, sample: int | None = None) -> None:
    """Runs inside the copy (REPO is the copy here): every mutant of one module, written to ``result`` as JSON.

    Bytecode caching is on (pytest's rewritten tests are then compiled once, not per mutant); each mutant gets its
    own whole-second mtime, so a cached .pyc of another mutant (checked by mtime and size) is never reused."""
    sys.dont_write_bytecode = False
    target, tests = MODULES[name]
    path = REPO / target
    args = ["-x", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", *shlex.split(tests)]
    if name in SHARED_DATA:
        os.environ["BOOM_TEST_DATA_DIR"] = str(REPO / ".mutation-data")  # prepared by the first, unmutated session
    source = path.read_text()
    found = mutants(source, target)
    coverage = _Coverage(path, _bodies(source))
    code = pytest.main(args, plugins=[coverage])  # imports numpy, pandas, torch... once, for every child
    if code != 0:
        raise SystemExit(f"mutation: the tests of {name} fail before any mutation (pytest exit {code}); fix them first: {tests}")
    if not any(os.path.realpath(getattr(m, "__file__", None) or "") == os.path.realpath(path) for m in list(sys.modules.values())):
        raise SystemExit(f"mutation: `{tests}` never imported {path} (the copy); every mutant would survive: check "
                         f"PYTHONPATH and the tests chosen for {name} in MODULES")
    _purge()
    code, base = _forked(args, 900)
    if code != 0:
        raise SystemExit(f"mutation: the tests of {name} pass in-process but fail in a forked child (exit {code})")
    timeout = max(10.0, 5 * base + 5)
    counts: dict[str, list[str]] = {k: [] for k in KINDS}
    diffs: dict[str, str] = {}
    started, selected, stamp = time.perf_counter(), 0, int(path.stat().st_mtime)
    chosen = sample_ids(len(found), sample)
    try:
        for done, i in enumerate(chosen, 1):
            mutated, diff, line = found[i - 1]
            keep = None if all_tests else coverage.covering(line)
            selected += keep is not None
            path.write_text(mutated)
            os.utime(path, (stamp + i, stamp + i))
            code, _ = _forked(args, timeout, [_Select(keep)] if keep is not None else None)
            kind = "timeout" if code is None else "survived" if code == 0 else "killed"
            counts[kind].append(str(i))
            if kind == "survived":
                diffs[str(i)] = diff
            if done % 20 == 0 or done == len(chosen):
                print(f"  {name}: {done}/{len(chosen)} mutants, {len(counts['survived'])} survived "
                      f"({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
    finally:
        path.write_text(source)
        os.utime(path, (stamp + len(found) + 1,) * 2)
    result.write_text(json.dumps({"counts": counts, "diffs": diffs, "baseline_s": round(base, 2),
                                  "timeout_s": round(timeout, 1), "selected": selected,
                                  "population": len(found), "sampled": len(chosen) < len(found)}))


def _run_fork(name: str, copy: Path, env: dict[str, str], all_tests: bool = False, sample: int | None = None) -> dict:
    result = copy / f".mutation-{name}.json"
    proc = subprocess.run([sys.executable, str(copy / "bench" / "mutation.py"), "--worker", name, "--result", str(result),
                           *(["--all-tests"] if all_tests else []), *(["--sample", str(sample)] if sample else [])],
                          cwd=copy, env=env, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0 or not result.exists():
        raise SystemExit(f"mutation: the worker for {name} failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}")
    return json.loads(result.read_text())


def _ids(copy: Path, env: dict[str, str], kind: str) -> list[str]:
    out = subprocess.run([sys.executable, "-m", "mutmut", "result-ids", kind], cwd=copy, env=env, capture_output=True,
                         text=True).stdout
    return [t for t in out.split() if t.isdigit()]


def _run_mutmut2(name: str, copy: Path, env: dict[str, str]) -> dict:
    target, tests = MODULES[name]
    (copy / ".mutmut-cache").unlink(missing_ok=True)
    runner = f"{sys.executable} -m pytest -x -q -p no:cacheprovider -p no:randomly {tests}"
    proc = subprocess.run([sys.executable, "-m", "mutmut", "run", "--paths-to-mutate", target, "--tests-dir", "tests",
                           "--runner", runner, "--no-progress", "--simple-output"],
                          cwd=copy, env=env, capture_output=True, text=True)
    counts = {k: _ids(copy, env, k) for k in KINDS}
    if not any(counts.values()):
        raise SystemExit(f"mutation: mutmut produced no results for {name}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    diffs = {i: subprocess.run([sys.executable, "-m", "mutmut", "show", i], cwd=copy, env=env, capture_output=True,
                               text=True).stdout.strip() for i in counts["survived"] + counts["suspicious"]}
    return {"counts": counts, "diffs": diffs}


def run_module(name: str, copy: Path, env: dict[str, str], engine: str = "fork", store: Path = STORE,
               all_tests: bool = False, sample: int | None = None) -> dict:
    target, tests = MODULES[name]
    started = time.perf_counter()
    if sample and engine != "fork":
        raise SystemExit("mutation: --sample needs the fork engine")
    out = _run_fork(name, copy, env, all_tests, sample) if engine == "fork" else _run_mutmut2(name, copy, env)
    seconds = time.perf_counter() - started
    counts = out["counts"]
    total = sum(len(v) for v in counts.values())
    killed = len(counts["killed"]) + len(counts["timeout"])  # a mutant that hangs the tests is caught
    of = f" (a seeded sample of {out['population']} mutants)" if out.get("sampled") else ""
    print(f"{name}: {killed}/{total} killed{of} ({seconds:.0f} s, engine {engine})", flush=True)
    row = {"name": name, "target": target, "tests": tests, "engine": engine + ("" if engine != "fork" or not all_tests else " (all tests)"), **out, "total": total, "killed": killed,
           "seconds": round(seconds, 1)}
    store.mkdir(parents=True, exist_ok=True)
    (store / f"{name}.json").write_text(json.dumps(row, indent=1))
    return row


def write_report(rows: list[dict], notes: str) -> None:
    whole = [r for r in rows if not r.get("sampled")]  # the overall figure counts fully measured modules only
    total = sum(r["total"] for r in whole)
    killed = sum(r["killed"] for r in whole)
    lines = ["# Mutation score of the unit tests", "",
             "Mutants of mutmut 2.5.1's operators (`make mutation`, bench/mutation.py), one module at a time against the "
             f"unit tests that cover it, on {os.cpu_count()} shared cores; engine `fork`: one forked pytest run per mutant "
             "from a worker that imported everything once, `mutmut2`: `mutmut run` (a new pytest process per mutant). "
             "Written by bench/mutation.py; the notes below it by hand.", "",
             f"**Overall: {killed}/{total} killed ({100 * killed / max(1, total):.1f}%)** over the modules measured "
             "whole" + ("; sampled modules: their own row and 95% interval." if len(whole) < len(rows) else "."), "",
             "| module | file | tests | mutants | killed | survived | score | seconds | engine |",
             "|---|---|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        surv = len(r["counts"]["survived"]) + len(r["counts"]["suspicious"])
        score = f"{100 * r['killed'] / max(1, r['total']):.0f}%"
        mutants_cell = str(r["total"])
        if r.get("sampled"):
            lo, hi = score_interval(r["killed"], r["total"])
            score += f" [{100 * lo:.0f}, {100 * hi:.0f}]"
            mutants_cell = f"{r['total']} sampled of {r['population']}"
        lines.append(f"| {r['name']} | `{r['target']}` | `{r['tests']}` | {mutants_cell} | {r['killed']} | {surv} | "
                     f"{score} | {r['seconds']:.0f} | {r.get('engine', 'mutmut2')} |")
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
    ap.add_argument("--engine", choices=("fork", "mutmut2"), default="fork",
                    help="fork: one forked pytest run per mutant (default); mutmut2: `mutmut run`, to cross-check it")
    ap.add_argument("--store", type=Path, default=STORE,
                    help=f"folder of the per-module JSON rows (default {STORE.relative_to(REPO)}); the report is "
                         "rewritten only from the default one")
    ap.add_argument("--notes", type=Path, default=REPO / "bench" / "mutation_notes.md",
                    help="a Markdown file appended as the Notes section (default bench/mutation_notes.md)")
    ap.add_argument("--report-only", action="store_true", help="rewrite mutation.md from the stored results only")
    ap.add_argument("--all-tests", action="store_true",
                    help="fork engine: run every covering test per mutant, not only those that call the mutated function")
    ap.add_argument("--sample", type=int, metavar="N",
                    help="fork engine: run a seeded random sample of N mutants per module (its row gives the 95%% "
                         "interval of the score); default: every mutant")
    ap.add_argument("--worker", help=argparse.SUPPRESS)  # internal: run one module inside the copy
    ap.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.result, args.all_tests, args.sample)
        return 0
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
                run_module(n, copy, env, args.engine, args.store.resolve(), args.all_tests, args.sample)
    if args.store.resolve() == STORE:
        rows = [json.loads((STORE / f"{n}.json").read_text()) for n in MODULES if (STORE / f"{n}.json").exists()]
        write_report(rows, args.notes.read_text() if args.notes and args.notes.exists() else "")
    return 0

if __name__ == "__main__":
    sys.exit(main())

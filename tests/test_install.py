"""`pip install ./schema ./models/_kit ./core`: complete declared dependencies, and packages that work outside a checkout.

A fresh venv installed from an index is too slow and too network-bound for a test, so this checks what such an
install depends on: the three wheels are built from their pyproject.toml (no isolation, no index), every
third-party module their code imports must belong to a declared requirement (or one it pulls in), the pinned
requirement lists must be declared, and the built wheels, installed into a bare folder on PYTHONPATH (not the
editable checkout), answer `python -m boom --version`, refuse `models list` with the one-line "no checkout"
error, and run a model end to end with `--data-dir` / `--results-dir` in a temporary folder.
"""
from __future__ import annotations

import ast
import importlib.metadata as md
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
PACKAGES = {"boom-schema": (REPO / "schema", "boom_schema"), "boom-kit": (REPO / "models" / "_kit", "boom_kit"),
            "boom-tte": (REPO / "core", "boom")}
OWN = {"boom", "boom_schema", "boom_kit"}
TORCH_MODULES = {"torch", "transformers", "tokenizers"}  # the kit's deep-learning helpers: the torch extras
BUILD_TOOLS = {"setuptools", "pip", "wheel"}


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("wheels")
    sources = []
    for name, (folder, _) in PACKAGES.items():  # built from copies: setuptools leaves build/ in the source tree
        copy = out / "src" / name
        shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
        sources.append(str(copy))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                    "-w", str(out), *sources], check=True, cwd=out)
    found = {canonicalize_name(p.name.split("-")[0]): p for p in out.glob("*.whl")}
    assert set(found) == set(PACKAGES), found
    return found


def _requires(wheel: Path) -> list[Requirement]:
    with zipfile.ZipFile(wheel) as z:
        meta = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    return [Requirement(line.split(":", 1)[1].strip()) for line in meta.splitlines() if line.startswith("Requires-Dist:")]


def _declared(wheels: dict[str, Path], extras: tuple[str, ...] = ()) -> set[str]:
    """Distributions boom-tte declares for ``extras`` (none: the base install), following boom-kit/-schema."""
    names: set[str] = set()
    todo = [("boom-tte", frozenset(extras))]
    seen = set()
    while todo:
        pkg, wanted = todo.pop()
        if (pkg, wanted) in seen:
            continue
        seen.add((pkg, wanted))
        for req in _requires(wheels[pkg]):
            active = any(req.marker is None or req.marker.evaluate({"extra": e}) for e in ("", *wanted))
            if not active:
                continue
            name = canonicalize_name(req.name)
            names.add(name)
            if name in wheels:
                todo.append((name, frozenset(req.extras)))
    return names


def _closure(names: set[str]) -> set[str]:
    """The declared distributions and everything they require, as installed in this environment."""
    out, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in out:
            continue
        out.add(name)
        try:
            reqs = md.requires(name) or []
        except md.PackageNotFoundError:
            continue
        todo += [canonicalize_name(Requirement(r).name) for r in reqs if not Requirement(r).marker
                 or Requirement(r).marker.evaluate({"extra": ""})]
    return out


def _imports(package: Path) -> dict[str, str]:
    """Top-level third-party modules the package's code imports (import statements and find_spec("x")) -> a file."""
    found: dict[str, str] = {}
    for path in sorted(package.rglob("*.py")):
        text = path.read_text()
        names = re.findall(r"find_spec\(\"(\w+)\"\)", text)
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Import):
                names += [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.append(node.module.split(".")[0])
        for name in names:
            if name not in sys.stdlib_module_names and name not in OWN:
                found.setdefault(name, str(path.relative_to(REPO)))
    return found


def test_every_import_is_a_declared_dependency(wheels: dict[str, Path]) -> None:
    dists = md.packages_distributions()
    base = _closure(_declared(wheels))
    with_torch = _closure(_declared(wheels, ("torch",)))
    missing = []
    for folder, module in PACKAGES.values():
        for name, where in _imports(folder / module).items():
            if name == "tomli":  # the Python < 3.11 fallback of tomllib
                assert any(r.name == "tomli" and "python_version" in str(r.marker) for r in _requires(wheels["boom-tte"]))
                continue
            owners = {canonicalize_name(d) for d in dists.get(name, [name])}
            allowed = with_torch if module == "boom_kit" and name in TORCH_MODULES else base
            if not owners & allowed:
                missing.append(f"{name} ({where}; distribution {sorted(owners)})")
    assert not missing, f"imported but not declared by pip install ./core: {missing}"


def test_requirement_lists_are_declared(wheels: dict[str, Path]) -> None:
    def listed(name: str) -> set[str]:
        lines = (REPO / "requirements" / name).read_text().splitlines()
        return {canonicalize_name(Requirement(l).name) for l in lines if l.strip() and not l.startswith("#")}

    assert listed("core.txt") - BUILD_TOOLS <= _declared(wheels) | _declared(wheels, ("test",))
    assert listed("torch.txt") <= _declared(wheels, ("torch",))
    assert {"rdkit", "scikit-learn", "qm9pack", "docker", "pandas", "pydantic"} <= _declared(wheels)
    assert "torch" not in _declared(wheels)  # torch models are an extra


def _boom(args: list[str], cwd: Path, site: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("BOOM_HOME", "BOOM_DATA_DIR", "BOOM_RESULTS_DIR", "BOOM_MODELS_DIR", "PYTHONPATH")}
    return subprocess.run([sys.executable, "-m", "boom", *args], cwd=cwd, capture_output=True, text=True,
                          env={**clean, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1", **env}, timeout=600)


def test_installed_wheels_work_outside_the_checkout(wheels: dict[str, Path], tmp_path: Path) -> None:
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", str(site),
                    *map(str, wheels.values())], check=True)
    where = subprocess.run([sys.executable, "-c", "import boom, boom.data.pinned as p; print(boom.__file__); "
                            "print(p.PINNED_FILE.is_file())"], env={**os.environ, "PYTHONPATH": str(site)},
                           cwd=tmp_path, capture_output=True, text=True, check=True).stdout.split()
    assert where == [str(site / "boom" / "__init__.py"), "True"]  # the wheel, with its package data

    version = _boom(["--version"], tmp_path, site)
    assert version.returncode == 0 and version.stdout.startswith(f"boom {wheels['boom-tte'].name.split('-')[1]} (contract ")

    nowhere = _boom(["models", "list"], tmp_path, site)
    lines = nowhere.stderr.strip().splitlines()
    assert nowhere.returncode == 1 and len(lines) == 1 and "no BOOM-TTE checkout found" in lines[0], nowhere.stderr

    data, results = tmp_path / "data", tmp_path / "results"
    run = _boom(["--data-dir", str(data), "--results-dir", str(results), "run", "broken", "density", "--subset", "20",
                 "--set", "mode=ok", "--threads", "1"], tmp_path, site,
                BOOM_MODELS_DIR=str(REPO / "tests" / "fixtures" / "models"))
    assert run.returncode == 0, run.stdout + run.stderr
    records = list(results.glob("10k_csd/density/broken/*/record.json"))
    assert len(records) == 1 and json.loads(records[0].read_text())["status"] == "ok"
    assert (data / "10k_csd" / "manifest.json").is_file()

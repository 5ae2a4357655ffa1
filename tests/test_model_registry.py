"""One test over every model in the registry: a valid spec that declares every hyperparameter the model reads,
and a CPU smoke run through the local runner on one 10k_csd and one QM9 property with valid predictions and
finite scores.  Model-specific physics (readout scaling, equivariance, checkpoint loading...) stays in the
per-model files (tests/test_model_<name>.py).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from boom import registry
from boom_schema import PROPERTIES
from boom_schema.spec import load_spec
from tests.conftest import REPO, smoke_run

KIT = REPO / "models" / "_kit" / "boom_kit"
MODELS = [f.name for f in registry.model_folders(REPO / "models")]
# entry.py reads ``precision`` only where a spec declares it (ctx.declares): not a read every model must declare
OPTIONAL_READS = {"entry.py"}


def _kit_module(name: str) -> Path | None:
    """``boom_kit.x`` -> models/_kit/boom_kit/x.py (or x/__init__.py); None outside the kit."""
    if name != "boom_kit" and not name.startswith("boom_kit."):
        return None
    parts = name.split(".")[1:]
    base = KIT.joinpath(*parts) if parts else KIT
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(tree: ast.AST) -> set[str]:
    """Modules a file imports, ``from boom_kit import readout`` counted as ``boom_kit.readout``."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def _param_reads(tree: ast.AST) -> set[str]:
    """Hyperparameter names a file reads: ``ctx.param("x")`` / ``param("x")``, names iterated into
    ``param(name)`` from a literal tuple in a comprehension, and ``*_key="x"`` keywords (a name handed to the kit)."""
    reads: set[str] = set()

    def is_param(call: ast.AST) -> bool:
        return isinstance(call, ast.Call) and (
            (isinstance(call.func, ast.Attribute) and call.func.attr == "param")
            or (isinstance(call.func, ast.Name) and call.func.id == "param"))

    for node in ast.walk(tree):
        if is_param(node) and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            reads.add(node.args[0].value)
        if isinstance(node, (ast.DictComp, ast.ListComp, ast.SetComp, ast.GeneratorExp)):
            if any(is_param(n) for n in ast.walk(node)):
                for gen in node.generators:
                    if isinstance(gen.iter, (ast.Tuple, ast.List)):
                        reads.update(e.value for e in gen.iter.elts if isinstance(e, ast.Constant) and isinstance(e.value, str))
        if isinstance(node, ast.keyword) and node.arg and node.arg.endswith("_key") and isinstance(node.value, ast.Constant):
            reads.add(node.value.value)
    return reads


def params_read(model: str) -> dict[str, str]:
    """Every hyperparameter name the model's files and the kit modules they use read -> the first file seen."""
    todo = sorted((REPO / "models" / model).glob("*.py"))
    seen: set[Path] = set()
    reads: dict[str, str] = {}
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        tree = ast.parse(path.read_text())
        if path.name not in OPTIONAL_READS or path.parent != KIT:
            for name in _param_reads(tree):
                reads.setdefault(name, str(path.relative_to(REPO)))
        todo.extend(p for p in map(_kit_module, _imports(tree)) if p is not None and p not in seen)
    return reads


def smoke_properties(model: str) -> list[str]:
    """The first 10k_csd and the first QM9 property the model supports (in its spec's order)."""
    spec = load_spec(REPO / "models" / model / "model.yaml")
    chosen = []
    for dataset in ("10k_csd", "qm9"):
        prop = next((p for p in spec.tasks if PROPERTIES[p].dataset == dataset), None)
        if prop is not None:
            chosen.append(prop)
    return chosen


def test_the_scan_finds_reads_in_a_model_and_in_the_kit_it_uses():
    """The static scan is not vacuous: gnn-topological reads its own 'layers' and the graph recipe's and
    readout's names through the kit."""
    reads = params_read("gnn-topological")
    assert {"layers", "hidden", "patience", "clip", "readout"} <= set(reads)
    assert reads["readout"].endswith("readout.py") and reads["layers"].endswith("gnn-topological/main.py")


@pytest.mark.parametrize("model", MODELS)
def test_spec_declares_every_parameter_the_model_reads(model):
    spec = load_spec(REPO / "models" / model / "model.yaml")
    assert spec.name == model
    undeclared = {name: where for name, where in params_read(model).items() if name not in spec.defaults}
    assert not undeclared, f"{model} reads hyperparameters its model.yaml does not declare: {undeclared}"
    assert set(spec.smoke) <= set(spec.defaults), f"{model}: smoke sets undeclared {set(spec.smoke) - set(spec.defaults)}"
    assert smoke_properties(model), f"{model} supports no property"


@pytest.mark.model
@pytest.mark.parametrize("model,prop", [(m, p) for m in MODELS for p in smoke_properties(m)])
def test_smoke_run(prepared, model, prop):
    """CPU smoke run through the local runner: status ok (the orchestrator validated the predictions against
    the blind test set), finite RMSE/MAE/R2 on both ID and OOD, one prediction per test molecule."""
    import pandas as pd

    outcome = smoke_run(model, prop)
    preds = pd.read_csv(outcome.folder / "predictions.csv", dtype={"mol_id": str})
    assert preds["mol_id"].is_unique and preds["y_pred"].notna().all()
    assert len(preds) == outcome.scores.id.n + outcome.scores.ood.n

"""The GPU check's CPU rehearsal (bench/gpu_check.py --device cpu --tiny) and the kit's accelerator facts.

CI has no GPU: this runs the check's real code path (orchestrator, local runner, model entry points, the
model report's ``accelerator`` dict, the extrapolation and the tables) for two models on one task, with
bf16 autocast exercised once on the CPU.
"""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", REPO / "bench" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rehearsal(prepared, tmp_path_factory):
    gc = _gpu_check()
    out = tmp_path_factory.mktemp("gpu_check")
    assert gc.main(["--device", "cpu", "--tiny", "--models", "mlp,gnn-topological", "--props", "mu",
                    "--bf16-also", "mlp", "--out", str(out), "--work", str(out / "runs")]) == 0
    return gc, json.loads((out / "gpu.json").read_text()), (out / "gpu.md").read_text()


def test_rehearsal_rows_report_where_the_tensors_ran(rehearsal):
    _, result, _ = rehearsal
    rows = {(r["model"], r["prop"]): r for r in result["rows"]}
    assert set(rows) == {("mlp", "mu"), ("gnn-topological", "mu"), ("mlp (bf16)", "mu")}
    for row in rows.values():
        assert row["status"] == "ok", row["error"]
        assert row["device"] == "cpu" and row["parameter_devices"] == ["cpu"]
        assert row["on_gpu"] is False and row["peak_gpu_mb"] is None
        assert len(row["epoch_s"]) == 2  # two epochs, the second one timed
        assert row["s_per_1000_per_epoch"] == pytest.approx(row["epoch_s"][-1] / row["n_train"] * 1000, rel=1e-3)
        assert row["n_train"] == 40
    assert rows[("mlp", "mu")]["precision"] == "fp32"
    assert rows[("mlp (bf16)", "mu")]["precision"] == "bf16"  # autocast seen in the forward pass


def test_rehearsal_tables_are_labelled_and_extrapolate_only_measured_datasets(rehearsal):
    _, result, text = rehearsal
    assert "CPU REHEARSAL" in text and "not run: no device" in text
    hours = result["extrapolation"]["hours"]["mlp"]
    assert all(hours[p] is not None and hours[p] > 0 for p in ("mu", "alpha", "cv"))  # qm9 from the mu probe
    assert hours["hof"] is None and hours["density"] is None  # 10k_csd was not probed
    assert result["extrapolation"]["model_total"]["mlp"] is None  # an incomplete row is not totalled
    assert result["meta"]["split_sizes"]["mu"]["train"] > 100_000


def test_extrapolation_arithmetic():
    gc = _gpu_check()
    rows = [gc.Row("mlp", "mu", "ok", s_per_1000_per_epoch=2.0, overhead_s_per_mol=0.001),
            gc.Row("mlp", "hof", "ok", s_per_1000_per_epoch=4.0, overhead_s_per_mol=0.0)]
    sizes = {p: {"train": 1000, "id": 100, "ood": 100} for p in gc.TASKS}
    extra = gc.extrapolate(rows, sizes, ["mlp"])
    import yaml

    epochs = yaml.safe_load((REPO / "models" / "mlp" / "model.yaml").read_text())["defaults"]["epochs"]
    assert epochs > 1 and extra["epochs"]["mlp"] == epochs  # from model.yaml, not from the code under test
    # qm9 task: 2 s per 1000 molecules per epoch x 1000 train x epochs, plus 1 ms x 1200 molecules
    assert extra["hours"]["mlp"]["alpha"] == pytest.approx((2.0 * epochs + 1.2) / 3600, abs=1e-4)
    assert extra["hours"]["mlp"]["density"] == pytest.approx(4.0 * epochs / 3600, abs=1e-4)
    assert extra["matrix_total"] == pytest.approx(extra["model_total"]["mlp"], abs=0.01)


def test_a_setup_failure_is_a_row(prepared):
    gc = _gpu_check()
    row = gc.measure("mlp", "mu", "cpu", subset=1, epochs=1, threads=1, timeout_s=60, tiny=True, precision=None)
    assert row.status == "failed" and "at least 2" in row.error


def test_precision_must_be_known():
    sys.path.insert(0, str(REPO / "models" / "_kit"))
    from boom_kit import accelerator

    with pytest.raises(ValueError, match="precision 'fp16' is not supported"):
        accelerator.configure("cpu", "fp16")
    accelerator.configure("cpu", None)
    assert accelerator.report()["precision"] == "fp32"

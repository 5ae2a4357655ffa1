"""The CLI on a small subset: a real run, resume, report, and clear one-line errors for bad input."""
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import stop_boom_midway

REPO = Path(__file__).resolve().parents[1]
BOOM = [sys.executable, "-m", "boom.cli"]


def boom(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*BOOM, *args], capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=900)


def test_run_rf_subset_then_resume_then_report(prepared):
    out = boom("run", "rf", "density", "--subset", "200", "--smoke", "--threads", "1")
    assert out.returncode == 0, out.stderr
    assert "ID  RMSE" in out.stdout and "OOD RMSE" in out.stdout
    folder = Path(out.stdout.strip().splitlines()[-1].split("run folder: ")[1])
    for name in ("task.json", "predictions.csv", "record.json", "scores.json", "log.txt", "parity.png", "model_report.json"):
        assert (folder / name).exists(), name
    record = json.loads((folder / "record.json").read_text())
    assert record["status"] == "ok" and record["subset"] == "n200" and record["peak_memory_mb"] > 0
    assert sorted(record["data_sha256"]) == ["test.csv", "train.csv"]  # contract 2: one blind test file
    assert record["split_sha256"] and record["contract_version"] == "2.0"
    assert folder.relative_to(prepared["results"]).parts[:3] == ("10k_csd", "density", "rf")

    again = boom("run", "rf", "density", "--subset", "200", "--smoke", "--threads", "1")
    assert again.returncode == 0 and "already done" in again.stdout

    rep = boom("report")
    assert rep.returncode == 0, rep.stderr
    # one row for the configuration (config column: smoke settings, subset), one seed
    assert re.search(r"^\| density \(g/cm\^3\) \| rf \| [^|]*n200[^|]* \| [^|]+ \| 1 \|", rep.stdout, re.M), rep.stdout
    assert (prepared["results"] / "leaderboard.csv").exists()


@pytest.mark.parametrize("args,fragment", [
    (["run", "nosuchmodel", "density"], "unknown model 'nosuchmodel': available models are"),
    (["run", "rf", "colour"], "unknown property 'colour'"),
    (["run", "rf", "density", "--set", "n_trees=3"], "unknown hyperparameter 'n_trees' for model rf"),
    (["run", "rf", "density", "--set", "n_estimators"], "--set expects KEY=VALUE"),
    (["run", "rf", "density", "--device", "cuda"], "does not use a GPU"),
])
def test_bad_input_is_one_clear_line(prepared, args, fragment):
    out = boom(*args)
    assert out.returncode != 0
    errors = [l for l in out.stderr.splitlines() if l.startswith("Error:")]
    assert len(errors) == 1 and fragment in errors[0], out.stderr


def _broken_models(root: Path) -> Path:
    """A models folder with the real rf plus models that crash, write NaN, or hang."""
    models = root / "models"
    models.mkdir()
    (models / "rf").symlink_to(REPO / "models" / "rf")
    spec = textwrap.dedent("""\
        name: {name}
        description: deliberately broken fixture
        citation: test
        input: smiles
        tasks: [density, hof, mu, alpha, homo, lumo, gap, r2, zpve, cv]
        defaults_source: test
        resources: {{timeout_s: 600}}
        """)
    bodies = {
        "crash": "raise RuntimeError('the model fell over')",
        "nan": "return boom_kit.Output(y_pred=np.full(len(ctx.test), np.nan))",
        "partial": "return boom_kit.Output(y_pred=np.zeros(len(ctx.test) - 1))",
        "sleepy": "import time; time.sleep(60)",
    }
    for name, body in bodies.items():
        folder = models / name
        folder.mkdir()
        (folder / "model.yaml").write_text(spec.format(name=name))
        (folder / "main.py").write_text(
            "import numpy as np\nimport boom_kit\n\ndef fit_predict(ctx):\n    " + body + "\n\n"
            "if __name__ == '__main__':\n    boom_kit.run(fit_predict)\n")
    return models


def test_failed_runs_are_recorded_and_touch_nothing_else(prepared, tmp_path):
    models = _broken_models(tmp_path)
    env = {"BOOM_MODELS_DIR": str(models), "BOOM_RESULTS_DIR": str(tmp_path / "results")}
    ok = boom("run", "rf", "hof", "--subset", "60", "--smoke", "--threads", "1", env=env)
    assert ok.returncode == 0, ok.stderr
    before = {p: p.read_bytes() for p in (tmp_path / "results").rglob("*") if p.is_file()}
    cases = {
        "crash": ([], "failed: model exited with status 1: RuntimeError: the model fell over"),
        "nan": ([], "failed: model exited with status 1: PredictionsError"),
        "partial": ([], "model returned 29 predictions for 30 test molecules"),
        "sleepy": (["--timeout", "5"], "timeout: exceeded the time limit of 5 s"),
    }
    for name, (extra, fragment) in cases.items():
        out = boom("run", name, "hof", "--subset", "60", *extra, env=env)
        assert out.returncode == 1
        assert fragment in out.stderr, out.stderr
        rec = json.loads(next((tmp_path / "results").glob(f"10k_csd/hof/{name}/*/record.json")).read_text())
        assert rec["status"] in ("failed", "timeout") and rec["reason"]
    after = {p: p.read_bytes() for p in before}
    assert after == before, "a failed run changed files of an earlier run"
    rep = boom("report", env=env)
    assert re.search(r"^\| hof \(kcal/mol\) \| crash \| [^|]*n60[^|]* \| [^|]+ \| 0 \|", rep.stdout, re.M), rep.stdout


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stopping_boom_stops_the_model_process(prepared, tmp_path, sig):
    """The model runs in its own session (for timeouts); stopping boom must still stop it, not orphan it."""
    env = {**os.environ, "BOOM_MODELS_DIR": str(REPO / "tests" / "fixtures" / "models"),
           "BOOM_RESULTS_DIR": str(tmp_path / "results")}
    code, log = stop_boom_midway(["run", "broken", "density", "--subset", "60", "--set", "mode=sleep"], env,
                                 tmp_path / "results", sig)
    assert code != 0
    pid = int(re.search(r"pid=(\d+)", log).group(1))
    with pytest.raises(ProcessLookupError):  # gone, not sleeping on for an hour under init
        os.kill(pid, 0)
    assert "run stopped" in log
    assert not list((tmp_path / "results").rglob("record.json")), "a stopped run is not recorded as a result"

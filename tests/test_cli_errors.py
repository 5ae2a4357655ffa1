"""Every command-line mistake gets a one-line error naming what is wrong and how to fix it.

No model runs here: each case must be refused before any work starts (click's range checks, the registry's
did-you-mean, the paths and raw-data hints).
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from boom.cli import main

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures" / "models"


def _invoke(args: list[str], **env: str):
    return CliRunner().invoke(main, args, env=env or None)


def _one_line_error(result, *phrases: str, code: int | None = None) -> str:
    assert result.exit_code != 0, result.output
    if code is not None:
        assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = [l for l in result.output.splitlines() if l.startswith("Error:")]
    assert len(lines) == 1, result.output
    for phrase in phrases:
        assert phrase in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("args,option,rng", [
    (["run", "rf", "density", "--subset", "0"], "--subset", "x>=1"),
    (["run", "rf", "density", "--train-subset", "0"], "--train-subset", "x>=1"),
    (["run", "rf", "density", "--threads", "0"], "--threads", "x>=1"),
    (["run", "rf", "density", "--timeout", "0"], "--timeout", "x>=1"),
    (["run", "rf", "density", "--seed", "-1"], "--seed", "x>=0"),
    (["matrix", "--jobs", "0"], "--jobs", "x>=1"),
    (["matrix", "--subset", "-5"], "--subset", "x>=1"),
    (["matrix", "--memory-gb", "0"], "--memory-gb", "x>0"),
    (["matrix", "--cpus", "-1"], "--cpus", "x>0"),
    (["matrix", "--max-parallel", "0"], "--max-parallel", "x>=1"),
    (["matrix", "--gpus-per-job", "-1"], "--gpus-per-job", "x>=0"),
    (["models", "check", "rf", "--subset", "0"], "--subset", "x>=1"),
])
def test_numeric_options_are_range_checked(args: list[str], option: str, rng: str) -> None:
    _one_line_error(_invoke(args), f"'{option}'", rng, code=2)


@pytest.mark.parametrize("seeds", ["-1", "3-1", "a", "0,,2"])
def test_matrix_seeds_are_checked(seeds: str) -> None:
    _one_line_error(_invoke(["matrix", "--seeds", seeds]), "'--seeds'", "integer >= 0", code=2)


def test_unknown_model_suggests_the_closest() -> None:
    _one_line_error(_invoke(["run", "rff", "density"]), "unknown model 'rff'", "did you mean 'rf'", code=1)


def test_unknown_property_suggests_the_closest() -> None:
    _one_line_error(_invoke(["run", "rf", "densty"]), "unknown property 'densty'", "did you mean 'density'", code=1)


def test_unknown_hyperparameter_suggests_the_closest() -> None:
    from boom import registry

    spec = registry.get("rf").spec
    name = next(iter(spec.defaults))
    typo = name[:-1] + ("x" if name[-1] != "x" else "y")
    line = _one_line_error(_invoke(["run", "rf", "density", "--set", f"{typo}=3"]), f"unknown hyperparameter {typo!r}",
                           f"did you mean {name!r}", code=1)
    assert "known:" in line


def test_hyperparameter_type_errors_say_what_is_allowed(tmp_path: Path) -> None:
    from boom import registry

    models = tmp_path / "models"
    shutil.copytree(FIXTURES / "broken", models / "typed")
    yaml_path = models / "typed" / "model.yaml"
    yaml_path.write_text(yaml_path.read_text().replace("name: broken", "name: typed")
                         .replace("  sleep_s: 3600\n", "  sleep_s: 3600\n  verbose: false\n"))
    spec = registry.get("typed", root=models).spec
    with pytest.raises(ValueError, match="use --set verbose=true or --set verbose=false"):
        registry.merge_params(spec, {"verbose": "maybe"})
    with pytest.raises(ValueError, match="numeric \\(default 3600 in its model.yaml\\)"):
        registry.merge_params(spec, {"sleep_s": "long"})


def test_malformed_set_is_named() -> None:
    _one_line_error(_invoke(["run", "rf", "density", "--set", "n_estimators"]), "--set expects KEY=VALUE", code=1)


def test_models_list_shows_a_broken_folder_as_a_row(tmp_path: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(FIXTURES / "broken", models / "broken")
    (models / "bad").mkdir()
    (models / "bad" / "model.yaml").write_text("name: bad\ndescription: x\n")
    result = _invoke(["models", "list"], BOOM_MODELS_DIR=str(models))
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line for line in result.output.splitlines() if line.strip() and not line.startswith("1 ")}
    assert "BROKEN" in rows["bad"] and "model.yaml: field" in rows["bad"]
    assert "smiles" in rows["broken"] and "BROKEN" not in rows["broken"]
    assert "1 model folder(s) have an invalid model.yaml" in result.output


def test_no_checkout_is_a_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A plain pip install (package in site-packages, no BOOM_HOME) says what to set instead of a traceback."""
    from boom import paths

    fake = tmp_path / "venv" / "lib" / "python3.11" / "site-packages" / "boom" / "paths.py"
    fake.parent.mkdir(parents=True)
    monkeypatch.setattr(paths, "__file__", str(fake))
    for var in ("BOOM_HOME", "BOOM_MODELS_DIR"):
        monkeypatch.delenv(var, raising=False)
    result = CliRunner().invoke(main, ["models", "list"])
    _one_line_error(result, "no BOOM-TTE checkout found", "set BOOM_HOME", code=1)
    result = CliRunner().invoke(main, ["models", "list"], env={"BOOM_MODELS_DIR": str(tmp_path / "nowhere")})
    _one_line_error(result, "no models folder at BOOM_MODELS_DIR=", code=1)


def test_raw_dir_hint_names_where_the_folder_came_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BOOM_RAW_DIR", raising=False)
    monkeypatch.setenv("BOOM_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(main, ["data", "prepare", "--dataset", "10k_csd", "--raw-dir", str(tmp_path / "none")])
    line = _one_line_error(result, "not found in raw-data folder", "(from --raw-dir)", code=1)
    assert "unset BOOM_RAW_DIR" not in line  # the user never set it
    monkeypatch.setenv("BOOM_RAW_DIR", str(tmp_path / "none"))
    result = CliRunner().invoke(main, ["data", "prepare", "--dataset", "10k_csd"])
    _one_line_error(result, "(from BOOM_RAW_DIR; unset it to download", code=1)


def test_download_hint_names_options_that_exist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`boom run` has no --raw-dir: the hint after a failed download names BOOM_RAW_DIR and `boom data prepare`."""
    import urllib.error

    from boom.data import llnl10k

    def offline(*a, **k):
        raise urllib.error.URLError("offline")

    monkeypatch.setattr(llnl10k.urllib.request, "urlopen", offline)
    with pytest.raises(llnl10k.RawDataError) as err:
        llnl10k.locate_raw(None, tmp_path)
    message = str(err.value)
    assert "set BOOM_RAW_DIR=DIR" in message and "`boom data prepare --raw-dir DIR`" in message
    run_options = {p.opts[0] for p in main.commands["run"].params if p.opts}
    assert "--raw-dir" not in run_options  # so the hint must not tell `boom run` users to pass it
    assert "--raw-dir" in {p.opts[0] for p in main.commands["data"].commands["prepare"].params}

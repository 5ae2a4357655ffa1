"""ctx.param: only names model.yaml declares, typed like their declared default (boom_kit.params)."""
from __future__ import annotations

import pandas as pd
import pytest

from tests.conftest import REPO


def _ctx(hyperparameters: dict, defaults: dict | None):
    import boom_kit
    from boom_kit.runtime import Stopwatch
    from boom_schema import PROPERTIES, Task

    info = PROPERTIES["density"]
    task = Task(run_id="t", model="toy", dataset=info.dataset, property="density", unit=info.unit,
                readout=info.readout, input_dir="/in", output_dir="/out", hyperparameters=hyperparameters)
    empty = pd.DataFrame({"mol_id": [], "smiles": [], "y": []})
    return boom_kit.Context(task=task, train=empty, test=empty, device="cpu", stopwatch=Stopwatch(), defaults=defaults)


def test_an_undeclared_name_is_an_error_naming_the_spec():
    ctx = _ctx({"lr": 0.1}, {"lr": 0.001})
    with pytest.raises(KeyError, match=r"'patience' is not declared in models/toy/model.yaml: add it under defaults "
                                       r"\(declared: lr\)"):
        ctx.param("patience")
    assert ctx.declares("lr") and not ctx.declares("patience")


def test_values_take_the_type_of_the_declared_default():
    defaults = {"lr": 0.001, "epochs": 10, "flag": False, "mode": "auto", "path": None}
    ctx = _ctx({"lr": 1, "epochs": 5.0, "flag": True, "mode": 0.5, "path": "/ckpt"}, defaults)
    assert ctx.param("lr") == 1.0 and type(ctx.param("lr")) is float
    assert ctx.param("epochs") == 5 and type(ctx.param("epochs")) is int
    assert ctx.param("flag") is True
    assert ctx.param("mode") == 0.5  # a str choice passes as given (rf's max_features also takes a fraction)
    assert ctx.param("path") == "/ckpt"
    assert _ctx({"lr": None}, {"lr": 0.001}).param("lr") is None  # --set lr= : None whatever the type


@pytest.mark.parametrize("name,value,message", [
    ("epochs", 1.5, "'epochs' is an integer in models/toy/model.yaml \\(default 10\\); got 1.5"),
    ("epochs", "ten", "'epochs' is an integer"),
    ("epochs", True, "'epochs' is an integer"),
    ("lr", "fast", "'lr' is a number in models/toy/model.yaml \\(default 0.001\\); got 'fast'"),
    ("flag", 1, "'flag' is a boolean .*got 1 \\(use --set flag=true or --set flag=false"),
])
def test_a_value_of_the_wrong_type_is_an_error(name, value, message):
    ctx = _ctx({"lr": 0.001, "epochs": 10, "flag": False, name: value}, {"lr": 0.001, "epochs": 10, "flag": False})
    with pytest.raises(TypeError, match=message):
        ctx.param(name)


def test_without_a_spec_the_task_names_are_the_declared_ones():
    ctx = _ctx({"hidden": 8}, None)
    assert ctx.param("hidden") == 8
    with pytest.raises(KeyError, match="'layers' is not declared"):
        ctx.param("layers")


def test_spec_defaults_come_from_the_model_yaml_beside_the_entry_point(tmp_path):
    from boom_kit.params import spec_defaults
    from boom_schema.spec import SpecError

    defaults = spec_defaults(REPO / "models" / "mlp" / "main.py")
    assert defaults["patience"] == 30 and defaults["clip_sd"] == 50.0
    with pytest.raises(SpecError, match="file not found"):
        spec_defaults(tmp_path / "main.py")


def test_the_sequence_recipe_reads_every_setting_from_the_spec():
    """fine_tune has no defaults of its own: a spec without pooling is an error naming it."""
    from boom_kit.sequence_recipe import fine_tune

    ctx = _ctx({"lr": 1e-3, "batch_size": 8}, {"lr": 1e-3, "batch_size": 8})
    with pytest.raises(KeyError, match="'pooling' is not declared"):
        fine_tune(ctx, type("Encoder", (), {"config": type("Config", (), {"hidden_size": 4})()})(), None, {})

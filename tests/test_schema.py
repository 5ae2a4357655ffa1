"""The contract: JSON Schema files in sync, specs validated with file and field in the message."""
from pathlib import Path

import pytest

from boom_schema import PROPERTIES, SpecError, load_spec
from boom_schema.jsonschema import DEFAULT_DIR, stale

REPO = Path(__file__).resolve().parents[1]
MINIMAL = """
name: {name}
description: test
citation: test
input: smiles
tasks: [density, hof, mu, alpha, homo, lumo, gap, r2, zpve, cv]
defaults_source: test
"""


def test_committed_json_schemas_match_the_models():
    assert stale(DEFAULT_DIR) == [], "run 'python -m boom_schema.jsonschema' and commit schema/json"


def test_ten_properties():
    assert len(PROPERTIES) == 10
    assert {p.dataset for p in PROPERTIES.values()} == {"10k_csd", "qm9"}


def test_property_name_type_lists_the_ten_properties_and_guards_every_property_field():
    from typing import get_args

    from pydantic import ValidationError

    from boom_schema import PropertyName, RunRecord, Scores, Task

    assert get_args(PropertyName) == tuple(PROPERTIES)
    for model in (Task, RunRecord, Scores):
        schema = model.model_json_schema()["properties"]["property"]
        assert schema["enum"] == list(PROPERTIES), model.__name__
    task = dict(run_id="r", model="rf", dataset="10k_csd", property="density", unit="g/cm^3", readout="mean",
                input_dir="/in", output_dir="/out")
    assert Task.model_validate(task).property == "density"
    with pytest.raises(ValidationError, match="property"):
        Task.model_validate({**task, "property": "colour"})


def test_image_kind_defaults_to_torch_and_refuses_others(tmp_path):
    spec = load_spec(_spec(tmp_path, MINIMAL.format(name="demo")))
    assert spec.image.value == "torch"
    assert load_spec(_spec(tmp_path, MINIMAL.format(name="lean") + "image: base\n", "lean")).image.value == "base"
    with pytest.raises(SpecError, match="field 'image'"):
        load_spec(_spec(tmp_path, MINIMAL.format(name="odd") + "image: cuda\n", "odd"))


def _spec(tmp_path: Path, text: str, name: str = "demo") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "model.yaml").write_text(text)
    return folder / "model.yaml"


def test_minimal_spec_is_valid(tmp_path):
    spec = load_spec(_spec(tmp_path, MINIMAL.format(name="demo")))
    assert spec.name == "demo" and spec.entrypoint == "main.py"


@pytest.mark.parametrize("mutate,fragment", [
    (lambda t: t.replace("input: smiles", "input: pictures"), "field 'input'"),
    (lambda t: t.replace("name: demo", "name: other"), "must equal the folder name"),
    (lambda t: t.replace(", cv]", "]"), "neither in tasks nor explained"),
    (lambda t: t.replace("cv]", "cv, colour]"), "unknown properties"),
    (lambda t: t + "gpu_count: 2\n", "field 'gpu_count'"),
    (lambda t: t.replace("citation: test\n", ""), "field 'citation'"),
    (lambda t: "name: [unclosed", "not valid YAML"),
    (lambda t: t + "unsupported:\n  cv: no heat capacity\n", "properties ['cv'] are both supported and unsupported"),
    (lambda t: t.replace("cv]", "cv, cv]"), "tasks lists a property twice"),
    (lambda t: "- a list\n", "expected a mapping of fields, got list"),
])
def test_invalid_specs_name_file_and_field(tmp_path, mutate, fragment):
    path = _spec(tmp_path, mutate(MINIMAL.format(name="demo")))
    with pytest.raises(SpecError) as err:
        load_spec(path)
    assert str(path) in str(err.value) and fragment in str(err.value)


def test_every_model_folder_has_a_valid_spec_and_entrypoint():
    from boom.registry import discover

    models = discover(REPO / "models")
    assert "rf" in models
    for name, entry in models.items():
        assert entry.entrypoint.exists(), f"{name}: entry point {entry.spec.entrypoint} missing"
        assert (entry.folder / "requirements.txt").exists(), f"{name}: requirements.txt missing"


def test_set_values_are_typed_like_their_defaults():
    from boom.registry import get, merge_params

    spec = get("rf").spec
    params = merge_params(spec, {"n_estimators": "7", "max_features": "0.5"})
    assert params["n_estimators"] == 7 and params["max_features"] == 0.5
    from boom.registry import parse_value

    assert parse_value("3e-4") == 3e-4 and parse_value("true") is True and parse_value("abc") == "abc"
    assert parse_value("nan") == "nan" and parse_value("inf") == "inf" and parse_value("-2") == -2
    with pytest.raises(ValueError, match="is numeric"):
        merge_params(spec, {"n_estimators": "many"})


def test_spec_messages_word_for_word(tmp_path):
    """model.yaml errors are what a model author reads: the file, the field, the fix; pinned whole."""
    ten = list(PROPERTIES)
    base = MINIMAL.format(name="demo")
    cases = iter(range(100))

    def message(text: str) -> tuple[str, Path]:
        where = tmp_path / str(next(cases))
        where.mkdir()
        path = _spec(where, text)
        with pytest.raises(SpecError) as err:
            load_spec(path)
        return str(err.value), path

    missing = tmp_path / "absent" / "model.yaml"
    with pytest.raises(SpecError) as err:
        load_spec(missing)
    assert str(err.value) == f"{missing}: file not found (every model folder needs a model.yaml)"
    for text, expected in [
        ("a: [1, 2\n", "not valid YAML (while parsing a flow sequence)"),
        ("- a\n- b\n", "expected a mapping of fields, got list"),
        (base.replace("[density,", "[colour, density,"),
         f"field 'tasks': Value error, unknown properties ['colour']; valid: {ten}"),
        (base.replace("[density,", "[density, density,"), "field 'tasks': Value error, tasks lists a property twice"),
        (base.replace(", cv]", "]"),
         "field '(top level)': Value error, properties ['cv'] are neither in tasks nor explained in unsupported"),
        (base + "unsupported: {cv: not yet}\n",
         "field '(top level)': Value error, properties ['cv'] are both supported and unsupported"),
        (base + "unsupported: {cv: no}\n", "field 'unsupported.cv': Input should be a valid string"),  # YAML's no
        (base + "resources: {cpus: 0}\n", "field 'resources.cpus': Input should be greater than 0"),
        (base.replace("name: demo", "name: other"), "field 'name': 'other' must equal the folder name 'demo'"),
    ]:
        got, path = message(text)
        assert got == f"{path}: {expected}"

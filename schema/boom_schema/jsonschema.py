"""Generate the JSON Schema files in ``schema/json`` from the pydantic models.

``python -m boom_schema.jsonschema [DIR]`` writes them; ``--check`` exits 1 when the committed files
differ from what the models generate (the test suite runs this so the two never drift).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from boom_schema.predictions import PredictionRow
from boom_schema.record import ModelReport, RunRecord
from boom_schema.scores import Scores
from boom_schema.spec import ModelSpec
from boom_schema.task import Task

MODELS = {
    "model_spec": ModelSpec,
    "task": Task,
    "prediction_row": PredictionRow,
    "model_report": ModelReport,
    "run_record": RunRecord,
    "scores": Scores,
}
DEFAULT_DIR = Path(__file__).resolve().parent.parent / "json"


def render() -> dict[str, str]:
    """File name -> JSON text of every schema."""
    return {
        f"{name}.schema.json": json.dumps(model.model_json_schema(), indent=2, sort_keys=True) + "\n"
        for name, model in MODELS.items()
    }


def stale(directory: Path) -> list[str]:
    """Names of schema files missing or different from what the models generate."""
    out = []
    for fname, text in render().items():
        path = directory / fname
        if not path.exists() or path.read_text() != text:
            out.append(fname)
    return out


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    check = "--check" in args
    args = [a for a in args if a != "--check"]
    directory = Path(args[0]) if args else DEFAULT_DIR
    if check:
        bad = stale(directory)
        if bad:
            print(f"JSON Schema files out of date: {bad}; run 'python -m boom_schema.jsonschema' to regenerate")
            return 1
        return 0
    directory.mkdir(parents=True, exist_ok=True)
    for fname, text in render().items():
        (directory / fname).write_text(text)
    print(f"wrote {len(MODELS)} schema files to {directory}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

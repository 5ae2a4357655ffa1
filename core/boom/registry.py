"""Model registry: every folder of ``models/`` with a model.yaml is a model (``_``-prefixed ones are not).

Adding a model is adding a folder; nothing here lists models by name.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

from boom_schema import PROPERTIES, ModelSpec, PropertyInfo, SpecError, load_spec, property_info
from boom import paths
from boom.hashing import sha256_file, sha256_json


class UnknownModelError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; keep it one clean line
        return str(self.args[0])


@dataclass(frozen=True)
class ModelEntry:
    spec: ModelSpec
    folder: Path

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def entrypoint(self) -> Path:
        return self.folder / self.spec.entrypoint

    def content_hash(self) -> str:
        """Hash of every file of the folder but its notes: a changed model gets new run ids and a new image tag.

        Markdown files (the model's README with its measured numbers) are documentation that no code reads; editing
        them must not orphan the runs they describe.
        """
        files = sorted(p for p in self.folder.rglob("*")
                       if p.is_file() and "__pycache__" not in p.parts and p.suffix.lower() != ".md")
        return sha256_json({str(p.relative_to(self.folder)): sha256_file(p) for p in files})


def model_folders(root: Path | None = None) -> list[Path]:
    root = root or paths.models_dir()
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_")) and (p / "model.yaml").exists())


def discover(root: Path | None = None) -> dict[str, ModelEntry]:
    """All valid models; an invalid spec raises SpecError naming the file and field."""
    return {f.name: ModelEntry(load_spec(f / "model.yaml"), f) for f in model_folders(root)}


def discover_all(root: Path | None = None) -> dict[str, "ModelEntry | SpecError"]:
    """Every model folder: its entry, or the SpecError of its model.yaml (so one broken folder hides no other)."""
    out: dict[str, ModelEntry | SpecError] = {}
    for f in model_folders(root):
        try:
            out[f.name] = ModelEntry(load_spec(f / "model.yaml"), f)
        except SpecError as exc:
            out[f.name] = exc
    return out


def did_you_mean(word: str, choices) -> str:
    """`` (did you mean 'rf'?)`` for the closest choices (difflib), else an empty string."""
    close = difflib.get_close_matches(word, list(choices), n=2, cutoff=0.6)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


def get_property(name: str) -> PropertyInfo:
    """``boom_schema.property_info`` with a did-you-mean in the error."""
    try:
        return property_info(name)
    except KeyError:
        raise UnknownModelError(f"unknown property {name!r}{did_you_mean(name, PROPERTIES)}; "
                                f"valid: {', '.join(PROPERTIES)}") from None


def get(name: str, root: Path | None = None) -> ModelEntry:
    folder = (root or paths.models_dir()) / name
    if not (folder / "model.yaml").exists() or name.startswith(("_", ".")):
        names = [f.name for f in model_folders(root)]
        raise UnknownModelError(f"unknown model {name!r}{did_you_mean(name, names)}: available models are "
                                f"{', '.join(names) or '(none)'}")
    return ModelEntry(load_spec(folder / "model.yaml"), folder)


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    """``['k=v', ...]`` -> dict, with a clear error for a malformed pair."""
    out = {}
    for pair in pairs:
        if "=" not in pair or not pair.split("=", 1)[0].strip():
            raise ValueError(f"--set expects KEY=VALUE, got {pair!r}")
        key, value = pair.split("=", 1)
        out[key.strip()] = value.strip()
    return out


_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def parse_value(text: str) -> Any:
    """A --set value: a written-out number (YAML 1.1 reads '3e-4' as a string), else any YAML scalar.

    Words such as 'nan' or 'inf' stay strings: a hyperparameter never silently becomes NaN.
    """
    if text == "":
        return None
    if _NUMBER.match(text):
        return int(text) if re.fullmatch(r"[+-]?\d+", text) else float(text)
    return yaml.safe_load(text)


def merge_params(spec: ModelSpec, overrides: Mapping[str, str], smoke: bool = False) -> dict[str, Any]:
    """Spec defaults, then the smoke overrides (smoke runs), then ``--set`` values typed like the default."""
    params: dict[str, Any] = dict(spec.defaults)
    if smoke:
        params.update(spec.smoke)
    for key, text in overrides.items():
        if key not in spec.defaults:
            known = ", ".join(spec.defaults) or "(none)"
            raise ValueError(f"unknown hyperparameter {key!r} for model {spec.name}{did_you_mean(key, spec.defaults)}; "
                             f"known: {known}")
        value = parse_value(text)
        default = spec.defaults[key]
        if isinstance(default, bool) and not isinstance(value, bool):
            raise ValueError(f"hyperparameter {key!r} of {spec.name} is a boolean: use --set {key}=true or "
                             f"--set {key}=false; got {text!r}")
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(default, (int, float)) and not isinstance(default, bool) and value is not None and not isinstance(value, (int, float)):
            if not (isinstance(value, str) and isinstance(default, str)):
                raise ValueError(f"hyperparameter {key!r} of {spec.name} is numeric (default {default!r} in its "
                                 f"model.yaml); got {text!r}")
        params[key] = value
    return params

"""Hyperparameters as a model reads them: only names its ``model.yaml`` declares, typed like their default.

``model.yaml``'s ``defaults`` is the one source of a model's hyperparameters: the orchestrator merges them with
the smoke settings and ``--set`` values into the task, and :meth:`boom_kit.Context.param` reads them back through
:func:`lookup`.  A name the spec does not declare is an error (no inline default can hide beside the spec), and
the value takes the type of the declared default:

- bool default: the value must be a boolean;
- int default: an integer (a whole float such as ``5.0`` becomes ``5``);
- float default: any number, as a float;
- str or null default: the value as given (a string choice such as ``readout`` or rf's ``max_features``,
  which also takes a fraction, is the model's to check).

An empty ``--set name=`` gives None whatever the default's type (e.g. ``clip=`` turns clipping off).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Mapping, Optional

from boom_schema.spec import load_spec


def spec_defaults(entry_script: Optional[str | Path] = None) -> dict[str, Any]:
    """The ``defaults`` of the ``model.yaml`` beside the entry script (``sys.argv[0]`` unless given)."""
    script = Path(entry_script if entry_script is not None else sys.argv[0]).resolve()
    return dict(load_spec(script.parent / "model.yaml").defaults)


def lookup(values: Mapping[str, Any], defaults: Optional[Mapping[str, Any]], name: str, model: str = "") -> Any:
    """``values[name]`` typed like ``defaults[name]``; a clear error for an undeclared name or a wrong type.

    ``defaults`` None (a context built by hand, without a spec) checks the name against ``values`` only.
    """
    declared = values if defaults is None else defaults
    where = f"models/{model}/model.yaml" if model else "the model's model.yaml"
    if name not in declared or name not in values:
        known = ", ".join(sorted(declared)) or "(none)"
        raise KeyError(f"hyperparameter {name!r} is not declared in {where}: add it under defaults "
                       f"(declared: {known})")
    value = values[name]
    if defaults is None or value is None:
        return value
    return _typed(name, value, defaults[name], where)


def _typed(name: str, value: Any, default: Any, where: str) -> Any:
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise TypeError(f"hyperparameter {name!r} is a boolean in {where}; got {value!r} "
                            f"(use --set {name}=true or --set {name}=false)")
        return value
    if isinstance(default, int):
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"hyperparameter {name!r} is an integer in {where} (default {default!r}); got {value!r}")
        return value
    if isinstance(default, float):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise TypeError(f"hyperparameter {name!r} is a number in {where} (default {default!r}); got {value!r}")
        return float(value)
    return value

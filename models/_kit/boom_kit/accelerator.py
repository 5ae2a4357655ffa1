"""Where a torch run's tensors really lived, its peak GPU memory and its precision: the model report's facts.

A run asked for ``--device cuda`` proves nothing by itself (a model can leave its tensors on the CPU), so
the kit records what it observes, generically for every torch model and without per-model code:

- the devices of the parameters the kit's training loop saw (``observe``), and whether CUDA memory was
  allocated at all in this process (``torch.cuda.max_memory_allocated``; covers Lightning-driven models);
- the precision: the ``precision`` hyperparameter (``fp32`` | ``bf16``) of models that declare it turns on
  bf16 autocast in the kit's loop (``autocast``), and a global forward hook notices autocast that a model's
  own code turned on, so the report says what ran, not only what was asked;
- the seconds of each training epoch (``epoch_done``), so a benchmark can time a steady-state epoch.

``report()`` is the ``ModelReport.accelerator`` dict; it is None when torch was never imported.
"""
from __future__ import annotations

import platform
import sys
from contextlib import nullcontext
from typing import Any, ContextManager, Optional

PRECISIONS = ("fp32", "bf16")
_HOOK_CALLS = 20000  # module forwards watched for autocast before the hook removes itself

_state: dict[str, Any] = {"device": "cpu", "precision": "fp32", "devices": set(), "dtypes": set(), "epoch_s": [],
                          "autocast": None, "hook": None, "calls": 0}


def configure(device: str, precision: Any = None) -> None:
    """Start watching a run on ``device``; ``precision`` is the task's hyperparameter (None = fp32)."""
    precision = "fp32" if precision is None else str(precision)
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not supported; use --set precision=fp32 or --set precision=bf16")
    _state.update(device=device, precision=precision, devices=set(), dtypes=set(), epoch_s=[], autocast=None, calls=0)
    try:
        import torch
    except ImportError:  # an image without torch (rf): nothing to watch
        return

    if device == "cuda" and torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    if _state["hook"] is None:
        _state["hook"] = torch.nn.modules.module.register_module_forward_hook(_watch_autocast)


def _watch_autocast(module: Any, args: Any, output: Any) -> None:
    import torch

    _state["calls"] += 1
    kind = "cuda" if _state["device"] == "cuda" else "cpu"
    if module.training and torch.is_autocast_enabled(kind):
        _state["autocast"] = {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(torch.get_autocast_dtype(kind), "autocast")
    if _state["autocast"] is not None or _state["calls"] >= _HOOK_CALLS:
        _state["hook"].remove()
        _state["hook"] = None


def autocast() -> ContextManager:
    """bf16 autocast on the run's device when the run asked for ``precision: bf16``; else a no-op."""
    if _state["precision"] != "bf16":
        return nullcontext()
    import torch

    return torch.autocast(device_type="cuda" if _state["device"] == "cuda" else "cpu", dtype=torch.bfloat16)


def observe(model: Any) -> None:
    """Record the devices (and dtypes) of ``model``'s parameters: where the tensors really are."""
    for p in model.parameters():
        _state["devices"].add(str(p.device))
        _state["dtypes"].add(str(p.dtype).replace("torch.", ""))


def epoch_done(seconds: float) -> None:
    """One training epoch (its optimiser steps and its validation pass) took ``seconds``."""
    _state["epoch_s"].append(round(float(seconds), 4))


def report() -> Optional[dict[str, Any]]:
    """The ``ModelReport.accelerator`` dict: device, name, peak_memory_mb, precision (+ what was observed)."""
    if "torch" not in sys.modules:
        return None
    import torch

    cuda = torch.cuda.is_available() and torch.cuda.is_initialized()
    peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else 0.0
    devices = sorted(_state["devices"])
    if cuda and (peak > 0 or any(d.startswith("cuda") for d in devices)):
        index = torch.cuda.current_device()
        device, name = f"cuda:{index}", torch.cuda.get_device_name(index)
    else:
        device, name, peak = (devices[0] if devices else "cpu"), (platform.processor() or platform.machine()), None
    dtypes = sorted(_state["dtypes"])
    precision = _state["autocast"] or ("fp64" if dtypes == ["float64"] else _state["precision"])
    return {"device": device, "name": name, "peak_memory_mb": None if peak is None else round(peak, 1),
            "precision": precision, "requested_precision": _state["precision"], "parameter_devices": devices,
            "parameter_dtypes": dtypes, "epoch_s": list(_state["epoch_s"]), "torch": torch.__version__}

"""The strict checkpoint-loading cases every model with ``--set pretrained=...`` must reject.

A pretrained checkpoint that does not fit must stop the run, never fall back to random weights silently:
weights of another width, a checkpoint with one layer's weights removed, one whose weights hold a NaN, and a
path that does not exist.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest


def assert_rejects_bad_checkpoints(build: Callable[[Path], Any], make_checkpoint: Callable[[Path, int], Any],
                                   tmp_path: Path, layer_key: str, width: int = 32, other_width: int = 48) -> None:
    """``build(folder)`` loads a checkpoint the way the model does; ``make_checkpoint(folder, width)`` writes a
    tiny one; ``layer_key`` is a substring of the weight names of one layer (removed for the 'missing' case)."""
    from safetensors.torch import load_file, save_file

    from boom_kit.checkpoints import CheckpointError

    make_checkpoint(tmp_path / "wrong-width", width)
    make_checkpoint(tmp_path / "other", other_width)
    weights = tmp_path / "wrong-width" / "model.safetensors"
    weights.write_bytes((tmp_path / "other" / "model.safetensors").read_bytes())
    with pytest.raises(CheckpointError):
        build(tmp_path / "wrong-width")

    make_checkpoint(tmp_path / "short", width)
    weights = tmp_path / "short" / "model.safetensors"
    kept = {k: v for k, v in load_file(weights).items() if layer_key not in k}
    assert len(kept) < len(load_file(weights)), f"no weight name contains {layer_key!r}"
    save_file(kept, weights, metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="missing"):
        build(tmp_path / "short")

    make_checkpoint(tmp_path / "poisoned", width)
    weights = tmp_path / "poisoned" / "model.safetensors"
    tensors = load_file(weights)
    name = next(k for k, v in tensors.items() if layer_key in k and v.is_floating_point())  # a weight the model keeps
    tensors[name] = tensors[name].clone()
    tensors[name].view(-1)[0] = float("nan")
    save_file(tensors, weights, metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="NaN"):
        build(tmp_path / "poisoned")

    with pytest.raises(CheckpointError):
        build(tmp_path / "nowhere")

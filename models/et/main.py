"""TorchMD-Net's Equivariant Transformer on the task's 3D geometries.

Readout from the kit's table (``boom_kit.readout``; ``readout: auto`` in model.yaml): mean for intensive
properties, sum with per-element offsets fit on train for extensive ones (size-extensive: two far-apart
copies predict twice), TorchMD-Net's dipole head for mu and its electronic-spatial-extent head
sum_i q_i |r_i - r_cm|^2 for r2.  Validation is the seeded slice of train, the best-validation weights
predict.  Molecules without a geometry get the train mean.  ``checkpoint=<path>`` loads pretrained weights
strictly before training (hard error if the file is missing or does not fit the architecture) and is
recorded as the run's ``pretrained``; ``save_checkpoint=true`` writes ``et.pt``.
"""
from pathlib import Path

import torch

import boom_kit
from boom_kit.pointcloud_recipe import train_and_predict
from etnet import EquivariantTransformer


def architecture(ctx: boom_kit.Context, mode: str, atom_scale: float, extent_scale: float) -> dict:
    return dict(hidden=ctx.param("hidden_channels"), layers=ctx.param("num_layers"),
                heads=ctx.param("num_heads"), num_rbf=ctx.param("num_rbf"),
                cutoff=ctx.param("cutoff"), readout=mode, atom_scale=atom_scale,
                extent_scale=extent_scale, max_neighbors=ctx.param("max_neighbors"))


def load_checkpoint(model: torch.nn.Module, path: str) -> None:
    """Strict load of a checkpoint (a state dict, or a dict holding one under 'state_dict')."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"checkpoint {path} is not a readable torch state dict ({type(exc).__name__})") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        raise ValueError(
            f"checkpoint {path} does not match the architecture: {len(missing)} missing "
            f"{missing[:3]}, {len(unexpected)} unexpected {unexpected[:3]}, {len(shapes)} shape mismatches {shapes[:3]}")
    model.load_state_dict(state, strict=True)


def fit_predict(ctx: boom_kit.Context) -> boom_kit.Output:
    arch: dict = {}

    def build(mode: str, atom_scale: float, extent_scale: float) -> EquivariantTransformer:
        arch.update(architecture(ctx, mode, atom_scale, extent_scale))
        return EquivariantTransformer(**arch)

    def loaded(model: torch.nn.Module):
        path = ctx.param("checkpoint") or None
        if path:
            load_checkpoint(model, path)
            ctx.note(f"initialised from checkpoint {path}")
        return path

    def trained(model: torch.nn.Module) -> None:
        if ctx.param("save_checkpoint"):
            torch.save({"state_dict": model.state_dict(), "architecture": arch}, ctx.artefact("et.pt"))

    return train_and_predict(ctx, build, "flat", loaded=loaded, trained=trained)


if __name__ == "__main__":
    boom_kit.run(fit_predict, packages=["torch"])

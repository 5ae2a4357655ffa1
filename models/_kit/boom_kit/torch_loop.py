"""A small, shared training loop for torch models: epochs, best-validation weights, timing.

Models bring a ``step(batch) -> loss`` and a ``predict(rows) -> np.ndarray`` (scaled units); this loop
owns the epoch structure, gradient clipping, the learning-rate scheduler step, early stopping on the
validation slice of train, and restoring the best-validation weights before prediction (BOOM's
scripts predicted with the last epoch's weights or picked checkpoints on the test set).
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np


@dataclass
class LoopResult:
    epochs: int
    best_epoch: int
    best_val_rmse: float
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def per_epoch_s(self) -> float:
        return self.seconds / max(1, self.epochs)


def batches(n: int, batch_size: int, rng: Optional[np.random.Generator]) -> list[np.ndarray]:
    """Index batches over ``n`` rows, shuffled when ``rng`` is given."""
    order = rng.permutation(n) if rng is not None else np.arange(n)
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


def fit(
    model: Any,
    optimizer: Any,
    step: Callable[[np.ndarray], Any],
    predict_val: Callable[[], np.ndarray],
    y_val: np.ndarray,
    n_train: int,
    batch_size: int,
    epochs: int,
    seed: int,
    scheduler: Any = None,
    scheduler_per: str = "step",
    patience: Optional[int] = None,
    clip: Optional[float] = None,
    ema: Any = None,
    log: Callable[[str], None] = print,
) -> LoopResult:
    """Train ``model`` and leave it holding its best-validation weights.

    ``step(idx)`` returns the loss tensor of the training rows ``idx``; ``predict_val()`` predicts the
    validation slice (scaled units) with the model in eval mode; ``ema`` (torch_ema-like, optional) is
    applied for validation and its averaged weights are the ones kept.
    """
    import torch

    from boom_kit import accelerator

    accelerator.observe(model)
    rng = np.random.default_rng(seed)
    best = (float("inf"), -1, None)
    history: list[dict[str, float]] = []
    started = time.perf_counter()
    bad = 0
    for epoch in range(1, epochs + 1):
        epoch_started = time.perf_counter()
        model.train()
        losses = []
        for idx in batches(n_train, batch_size, rng):
            optimizer.zero_grad(set_to_none=True)
            with accelerator.autocast():  # bf16 when the run asked for precision: bf16
                loss = step(idx)
            loss.backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            optimizer.step()
            if ema is not None:
                ema.update()
            if scheduler is not None and scheduler_per == "step":
                scheduler.step()
            losses.append(float(loss.detach()))
        if scheduler is not None and scheduler_per == "epoch":
            scheduler.step()
        model.eval()
        with torch.no_grad():
            if ema is not None:
                with ema.average_parameters():
                    pred = predict_val()
                    state = copy.deepcopy(model.state_dict())
            else:
                pred = predict_val()
                state = None
        accelerator.epoch_done(time.perf_counter() - epoch_started)
        val_rmse = float(np.sqrt(np.mean((np.asarray(pred, dtype=np.float64) - y_val) ** 2)))
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses)) if losses else float("nan"), "val_rmse": val_rmse})
        log(f"epoch {epoch}/{epochs} train_loss {history[-1]['train_loss']:.4f} val_rmse {val_rmse:.4f}")
        if not np.isfinite(val_rmse):
            raise FloatingPointError(f"validation RMSE is {val_rmse} at epoch {epoch} (diverged); lower the learning rate")
        if val_rmse < best[0]:
            best = (val_rmse, epoch, state if state is not None else copy.deepcopy(model.state_dict()))
            bad = 0
        else:
            bad += 1
            if patience is not None and bad >= patience:
                log(f"early stop at epoch {epoch} (no improvement for {patience} epochs)")
                break
    model.load_state_dict(best[2])
    model.eval()
    return LoopResult(epochs=len(history), best_epoch=best[1], best_val_rmse=best[0], history=history,
                      seconds=time.perf_counter() - started)


def count_parameters(model: Any) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def predict_in_batches(fn: Callable[[np.ndarray], Any], n: int, batch_size: int) -> np.ndarray:
    """Concatenate ``fn(idx)`` over ordered batches (no shuffling)."""
    import torch

    outs = []
    with torch.no_grad():
        for idx in batches(n, batch_size, None):
            outs.append(np.asarray(fn(idx).detach().cpu().double()).reshape(-1))
    return np.concatenate(outs) if outs else np.zeros(0)


def warmup_cosine(optimizer, total_steps: int, warmup_steps: int):
    """LambdaLR: linear warmup to the base lr, then cosine decay to zero (stepped once per batch)."""
    import torch

    warmup_steps = max(1, min(warmup_steps, total_steps // 2))

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        t = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)

"""The shared fine-tuning recipe of the SMILES encoders (chemberta, modernbert, molformer).

An encoder that returns ``last_hidden_state``, a pooled regression head, MSE on standardised targets, AdamW
with a linear warm-up then linear or cosine decay, best-validation weights on a seeded slice of train, bf16
autocast when the spec asks for it.  :func:`fine_tune` reads every setting from the model's spec.
"""
from __future__ import annotations

from typing import Any

from boom_kit.tokenize import encode, unknown_fraction


def _regressor_class():
    import torch
    from torch import nn

    class SequenceRegressor(nn.Module):
        """Encoder + pooled two-layer head: ``pooling`` is 'cls' (first token) or 'mean' (over real tokens)."""

        def __init__(self, encoder: nn.Module, hidden_size: int, pooling: str = "cls", dropout: float = 0.1):
            super().__init__()
            if pooling not in ("cls", "mean"):
                raise ValueError(f"pooling must be 'cls' or 'mean', got {pooling!r}")
            self.encoder, self.pooling = encoder, pooling
            self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden_size, hidden_size), nn.GELU(),
                                      nn.Dropout(dropout), nn.Linear(hidden_size, 1))

        def forward(self, input_ids: "torch.Tensor", attention_mask: "torch.Tensor") -> "torch.Tensor":
            h = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            if self.pooling == "cls":
                pooled = h[:, 0]
            else:
                m = attention_mask.unsqueeze(-1).to(h.dtype)
                pooled = (h * m).sum(1) / m.sum(1).clamp(min=1.0)
            return self.head(pooled).squeeze(-1)

    return SequenceRegressor


def lr_factor(schedule: str, total: int, n_warm: int):
    """Step -> learning-rate factor: linear warm-up over ``n_warm`` steps, then linear or cosine decay to 0."""
    import math

    if schedule not in ("linear", "cosine"):
        raise ValueError(f"schedule {schedule!r}: choose linear or cosine")

    def factor(step: int) -> float:
        if step < n_warm:
            return (step + 1) / max(1, n_warm)
        t = min(1.0, (step - n_warm) / max(1, total - n_warm))
        return max(0.0, 1.0 - t) if schedule == "linear" else 0.5 * (1.0 + math.cos(math.pi * t))

    return factor


def fit_predict_sequence_regressor(ctx: Any, encoder: Any, tokenizer: Any, hidden_size: int, *, pooling: str,
                                   lr: float, batch_size: int, epochs: int, max_length: int,
                                   weight_decay: float = 0.01, warmup: float = 0.1, dropout: float = 0.1,
                                   patience: int | None = None, clip: float = 1.0, extra: dict | None = None,
                                   schedule: str = "linear") -> Any:
    """Fine-tune ``encoder`` + head on ``ctx.train`` and predict ``ctx.test`` (original units).

    ``schedule``: after the linear warm-up the learning rate decays to zero linearly or along a cosine."""
    import numpy as np
    import torch

    from boom_kit.entry import Output
    from boom_kit.scaling import TargetScaler
    from boom_kit.splitting import validation_split
    from boom_kit.torch_loop import count_parameters, fit, predict_in_batches

    device = ctx.device
    with ctx.stopwatch("featurise"):
        ids, mask, n_trunc = encode(tokenizer, ctx.train["smiles"].tolist(), max_length)
        test_ids, test_mask, n_trunc_test = encode(tokenizer, ctx.test["smiles"].tolist(), max_length)
        unk = unknown_fraction(tokenizer, ctx.test["smiles"].tolist())
    if n_trunc or n_trunc_test:
        ctx.note(f"{n_trunc} train and {n_trunc_test} test SMILES truncated to {max_length} tokens")
    if unk > 0:
        ctx.note(f"{unk:.4%} of test tokens are unknown to the train vocabulary ([UNK])")
    y = ctx.train["y"].to_numpy(dtype=np.float64)
    tr, va = validation_split(len(y), ctx.seed)
    scaler = TargetScaler().fit(y[tr])
    z = torch.tensor(scaler.transform(y), dtype=torch.float32)

    model = _regressor_class()(encoder, hidden_size, pooling=pooling, dropout=dropout).to(device)
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2 or "norm" in n.lower()]
    decay = [p for n, p in model.named_parameters() if not (p.ndim < 2 or "norm" in n.lower())]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=lr)
    total = max(1, epochs * int(np.ceil(len(tr) / batch_size)))
    n_warm = int(warmup * total)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(schedule, total, n_warm))

    def forward(all_ids: torch.Tensor, all_mask: torch.Tensor, rows: np.ndarray) -> torch.Tensor:
        m = all_mask[rows]
        width = int(m.sum(1).max())
        b_ids, b_mask = all_ids[rows, :width].to(device), m[:, :width].to(device)
        if device == "cuda":
            with torch.autocast("cuda", dtype=torch.bfloat16):
                return model(b_ids, b_mask).float()
        return model(b_ids, b_mask)

    def step(idx: np.ndarray) -> torch.Tensor:
        rows = tr[idx]
        return torch.nn.functional.mse_loss(forward(ids, mask, rows), z[rows].to(device))

    def predict_val() -> np.ndarray:
        return predict_in_batches(lambda i: forward(ids, mask, va[i]), len(va), 2 * batch_size)

    with ctx.stopwatch("train"):
        result = fit(model, optimizer, step, predict_val, z[va].numpy().astype(np.float64), n_train=len(tr),
                     batch_size=batch_size, epochs=epochs, seed=ctx.seed, scheduler=scheduler,
                     scheduler_per="step", patience=patience, clip=clip)
    with ctx.stopwatch("predict"):
        order = np.arange(len(ctx.test))
        z_pred = predict_in_batches(lambda i: forward(test_ids, test_mask, order[i]), len(order), 2 * batch_size)
    return Output(
        y_pred=scaler.inverse(z_pred), n_parameters=count_parameters(model), epochs=result.epochs,
        best_epoch=result.best_epoch, pretrained=(extra or {}).get("pretrained"),
        extra={"best_val_rmse_scaled": result.best_val_rmse, "per_epoch_s": result.per_epoch_s,
               "vocab_size": len(tokenizer), "pooling": pooling, **(extra or {})},
    )


def fine_tune(ctx: Any, encoder: Any, tokenizer: Any, info: dict, *, dropout_key: str = "dropout") -> Any:
    """The entry point of a sequence model in one call: hyperparameters from the task, a note when pretrained
    weights were loaded, then :func:`fit_predict_sequence_regressor`.

    Every setting comes from the model's spec (``model.yaml`` declares pooling, lr, batch_size, epochs,
    max_length, weight_decay, warmup, schedule and the head's dropout under ``dropout_key``).
    """
    if info.get("pretrained"):
        dropped = info.get("dropped_head_weights")
        ctx.note(f"encoder and tokenizer loaded from {info['pretrained']}"
                 + (f" ({dropped} pretraining-head weights dropped)" if dropped is not None else ""))
    return fit_predict_sequence_regressor(
        ctx, encoder, tokenizer, encoder.config.hidden_size, pooling=ctx.param("pooling"),
        lr=ctx.param("lr"), batch_size=ctx.param("batch_size"), epochs=ctx.param("epochs"),
        max_length=ctx.param("max_length"), weight_decay=ctx.param("weight_decay"),
        warmup=ctx.param("warmup"), dropout=ctx.param(dropout_key), extra=info,
        schedule=ctx.param("schedule"),
    )

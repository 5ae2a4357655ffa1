"""The kit's training safeguards, tested directly: the validation slice, the target scaler, best-weights restore.

Every torch model relies on these; a slice that overlaps training rows or ignores the seed, a σ left in scaled
units, or "best-validation" weights that are really the last epoch's would otherwise pass every model test.
"""
from __future__ import annotations

import numpy as np
import pytest

from boom_kit.scaling import TargetScaler
from boom_kit.splitting import validation_split


# --- validation slice --------------------------------------------------------------------------------------

@pytest.mark.parametrize("n, fraction, minimum, n_val", [
    (100, 0.1, 1, 10), (101, 0.1, 1, 10), (10, 0.3, 1, 3), (5, 0.1, 1, 1), (2, 0.1, 1, 1), (20, 0.1, 50, 19),
    (40, 0.1, 8, 8),
])
def test_validation_slice_is_disjoint_complete_and_sized(n: int, fraction: float, minimum: int, n_val: int) -> None:
    train, val = validation_split(n, seed=7, fraction=fraction, minimum=minimum)
    assert len(val) == n_val and len(train) == n - n_val
    assert not set(train.tolist()) & set(val.tolist())
    assert sorted(train.tolist() + val.tolist()) == list(range(n))
    assert list(train) == sorted(train) and list(val) == sorted(val)


def test_validation_slice_is_seed_stable_and_seed_dependent() -> None:
    a_train, a_val = validation_split(200, seed=0)
    b_train, b_val = validation_split(200, seed=0)
    assert np.array_equal(a_val, b_val) and np.array_equal(a_train, b_train)
    assert len(a_val) == 20  # the documented default: 10% of train
    assert len(validation_split(5, seed=0)[1]) == 1  # default minimum 1 (round(0.5) = 0 -> 1)
    others = [validation_split(200, seed=s)[1] for s in (1, 2, 3)]
    assert all(not np.array_equal(a_val, o) for o in others)
    assert not np.array_equal(others[0], others[1])
    # not simply the first or last rows
    assert not np.array_equal(a_val, np.arange(20)) and not np.array_equal(a_val, np.arange(180, 200))


def test_validation_slice_needs_two_rows() -> None:
    with pytest.raises(ValueError, match=r"^need at least 2 training molecules to carve a validation slice, got 1$"):
        validation_split(1, seed=0)
    train, val = validation_split(2, seed=0)
    assert len(train) == 1 and len(val) == 1


# --- target scaler -----------------------------------------------------------------------------------------

def test_scaler_known_values_and_round_trip() -> None:
    assert TargetScaler().mean is None and TargetScaler().std is None  # nothing until fit()
    y = np.array([1.0, 3.0, 5.0, 7.0])  # mean 4, population std sqrt(5)
    s = TargetScaler().fit(y)
    assert s.mean == pytest.approx(4.0) and s.std == pytest.approx(np.sqrt(5.0))
    z = s.transform(y)
    assert z == pytest.approx((y - 4.0) / np.sqrt(5.0))
    assert z.mean() == pytest.approx(0.0, abs=1e-12) and z.std() == pytest.approx(1.0)
    assert s.inverse(z) == pytest.approx(y, rel=1e-12)
    assert s.inverse(np.array([0.0, 1.0])) == pytest.approx([4.0, 4.0 + np.sqrt(5.0)])


def test_scaler_inverse_std_scales_without_shifting() -> None:
    s = TargetScaler().fit(np.array([98.0, 102.0]))  # mean 100, std 2
    assert s.inverse_std(np.array([0.0, 0.5, 1.5])) == pytest.approx([0.0, 1.0, 3.0])  # times std, no +mean


def test_scaler_std_below_one_is_kept() -> None:
    s = TargetScaler().fit(np.array([0.1, 0.3]))  # QM9 homo-sized values: std 0.1 must not become 1
    assert s.mean == pytest.approx(0.2) and s.std == pytest.approx(0.1)
    assert s.transform(np.array([0.3])) == pytest.approx([1.0])
    assert TargetScaler().fit(np.array([5.0])).std == 1.0  # one target: std 0, replaced by 1


def test_scaler_constant_targets_and_misuse() -> None:
    s = TargetScaler().fit(np.array([3.0, 3.0, 3.0]))
    assert s.std == 1.0 and s.transform(np.array([4.0])) == pytest.approx([1.0])
    for bad in (np.array([]), np.array([1.0, np.nan]), np.array([np.inf, 1.0])):
        with pytest.raises(ValueError, match=r"^cannot fit a target scaler on empty or non-finite targets$"):
            TargetScaler().fit(bad)
    for use in ("transform", "inverse", "inverse_std"):
        with pytest.raises(RuntimeError, match=r"^TargetScaler used before fit\(\)$"):
            getattr(TargetScaler(), use)(np.array([1.0]))


# --- training loop: the best-validation weights are the ones kept -------------------------------------------

def _pushed_model(targets: list[float]):
    """A one-weight model whose every epoch's single SGD step lands the weight exactly on ``targets[epoch-1]``.

    Loss (w - t)² with SGD lr 0.5 moves w to t in one step; the validation labels are 1 * x, so the validation
    RMSE is |w - 1| * rms(x): it falls to 0 at the epoch whose target is 1 and rises again after it.
    """
    import torch

    torch.manual_seed(0)
    model = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(0.0)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    x_val = torch.tensor([[1.0], [2.0], [-1.0]])
    calls = {"n": 0}

    def step(idx):
        t = targets[min(calls["n"], len(targets) - 1)]
        calls["n"] += 1
        return ((model.weight - t) ** 2).sum()

    def predict_val():
        return model(x_val).detach().numpy().reshape(-1)

    return model, opt, step, predict_val, x_val.numpy().reshape(-1)


def test_loop_restores_the_best_epoch_not_the_last() -> None:
    from boom_kit.torch_loop import fit

    model, opt, step, predict_val, y_val = _pushed_model([0.5, 1.0, 4.0, 6.0])
    res = fit(model, opt, step, predict_val, y_val, n_train=4, batch_size=8, epochs=4, seed=0, log=lambda _: None)
    assert res.epochs == 4 and res.best_epoch == 2
    assert res.best_val_rmse == pytest.approx(0.0, abs=1e-12)
    assert [h["epoch"] for h in res.history] == [1, 2, 3, 4]
    rms = float(np.sqrt(np.mean(y_val**2)))
    assert [h["val_rmse"] for h in res.history] == pytest.approx([0.5 * rms, 0.0, 3.0 * rms, 5.0 * rms])
    assert float(model.weight.detach()) == pytest.approx(1.0)  # epoch 2's weight, not epoch 4's (6.0)
    assert not model.training  # left in eval mode for prediction


def test_loop_early_stops_after_patience_and_keeps_the_best() -> None:
    from boom_kit.torch_loop import fit

    model, opt, step, predict_val, y_val = _pushed_model([1.0, 3.0, 5.0, 7.0, 9.0])
    res = fit(model, opt, step, predict_val, y_val, n_train=4, batch_size=8, epochs=5, seed=0, patience=2,
              log=lambda _: None)
    assert res.epochs == 3 and res.best_epoch == 1  # epochs 2 and 3 no better -> stop after epoch 3
    assert float(model.weight.detach()) == pytest.approx(1.0)


def test_batches_cover_every_row_once() -> None:
    from boom_kit.torch_loop import batches

    plain = batches(10, 4, None)
    assert [b.tolist() for b in plain] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    shuffled = batches(10, 4, np.random.default_rng(0))
    assert [len(b) for b in shuffled] == [4, 4, 2]
    assert sorted(np.concatenate(shuffled).tolist()) == list(range(10))
    assert np.concatenate(shuffled).tolist() != list(range(10))


class _CountingScheduler:
    def __init__(self) -> None:
        self.steps = 0

    def step(self) -> None:
        self.steps += 1


@pytest.mark.parametrize("per, expected", [("step", 3 * 2), ("epoch", 2)])
def test_loop_steps_the_scheduler_per_batch_or_per_epoch(per: str, expected: int) -> None:
    from boom_kit.torch_loop import fit

    model, opt, step, predict_val, y_val = _pushed_model([1.0])
    sched = _CountingScheduler()
    lines: list[str] = []
    res = fit(model, opt, step, predict_val, y_val, n_train=9, batch_size=4, epochs=2, seed=0, scheduler=sched,
              scheduler_per=per, log=lines.append)
    assert sched.steps == expected  # 9 rows in batches of 4 -> 3 steps per epoch
    assert res.epochs == 2 and res.per_epoch_s == pytest.approx(res.seconds / 2)
    assert lines[0].startswith("epoch 1/2 train_loss ") and "val_rmse 0.0000" in lines[0]


def test_loop_clips_gradients() -> None:
    from boom_kit.torch_loop import fit

    model, opt, step, predict_val, y_val = _pushed_model([1.0])
    fit(model, opt, step, predict_val, y_val, n_train=4, batch_size=8, epochs=1, seed=0, clip=0.1, log=lambda _: None)
    # unclipped, one SGD step (lr 0.5, grad -2) lands on 1.0; clipped to norm 0.1 it moves by 0.05 only
    assert float(model.weight.detach()) == pytest.approx(0.05)


def test_predict_in_batches_keeps_row_order_and_counts_parameters() -> None:
    import torch

    from boom_kit.torch_loop import count_parameters, predict_in_batches

    values = torch.arange(10, dtype=torch.float32)
    out = predict_in_batches(lambda idx: values[torch.as_tensor(idx)] * 2, n=10, batch_size=3)
    assert out.tolist() == [2.0 * i for i in range(10)] and out.dtype == np.float64
    assert predict_in_batches(lambda idx: values[torch.as_tensor(idx)], n=0, batch_size=3).shape == (0,)
    assert count_parameters(torch.nn.Linear(3, 2)) == 3 * 2 + 2


def test_loop_details_messages_ties_shuffling_and_timing() -> None:
    import time

    from boom_kit.torch_loop import LoopResult, fit

    assert LoopResult(epochs=1, best_epoch=1, best_val_rmse=0.0).history == []
    assert LoopResult(epochs=1, best_epoch=1, best_val_rmse=0.0, seconds=3.0).per_epoch_s == 3.0
    assert LoopResult(epochs=0, best_epoch=-1, best_val_rmse=0.0).seconds == 0.0
    # a tie is not an improvement: the first of two equal epochs is kept; early stop says so in the log
    model, opt, step, predict_val, y_val = _pushed_model([1.0, 1.0, 1.0])
    seen: list[np.ndarray] = []
    lines: list[str] = []
    inner = step
    before = time.perf_counter()
    res = fit(model, opt, lambda idx: (seen.append(idx), inner(idx))[1], predict_val, y_val, n_train=12,
              batch_size=12, epochs=3, seed=0, patience=2, log=lines.append)
    elapsed = time.perf_counter() - before
    assert res.best_epoch == 1 and res.epochs == 3
    assert lines[-1] == "early stop at epoch 3 (no improvement for 2 epochs)"
    assert 0.0 <= res.seconds <= elapsed
    assert seen[0].tolist() != list(range(12))  # training rows are shuffled (seeded)
    # no training rows: the epoch's train loss is NaN, not an error
    model, opt, step, predict_val, y_val = _pushed_model([1.0])
    res = fit(model, opt, step, predict_val, y_val, n_train=0, batch_size=4, epochs=1, seed=0, log=lambda _: None)
    assert np.isnan(res.history[0]["train_loss"])


def test_loop_default_scheduler_steps_per_batch_and_diverged_message() -> None:
    from boom_kit.torch_loop import fit

    model, opt, step, predict_val, y_val = _pushed_model([1.0])
    sched = _CountingScheduler()
    fit(model, opt, step, predict_val, y_val, n_train=8, batch_size=4, epochs=1, seed=0, scheduler=sched,
        log=lambda _: None)
    assert sched.steps == 2
    with pytest.raises(FloatingPointError, match=r"^validation RMSE is nan at epoch 1 \(diverged\); lower the learning rate$"):
        fit(model, opt, step, lambda: np.full(3, np.nan), y_val, n_train=4, batch_size=8, epochs=1, seed=0,
            log=lambda _: None)


class _AveragingEma:
    """torch_ema-like: validation runs inside average_parameters(), whose weights (here: 1.0) are the ones kept."""

    def __init__(self, model) -> None:
        self.model, self.updates = model, 0

    def update(self) -> None:
        self.updates += 1

    def average_parameters(self):
        import contextlib

        import torch

        @contextlib.contextmanager
        def swap():
            saved = self.model.weight.detach().clone()
            with torch.no_grad():
                self.model.weight.fill_(1.0)
            yield
            with torch.no_grad():
                self.model.weight.copy_(saved)
        return swap()


def test_loop_keeps_the_ema_weights_it_validated() -> None:
    from boom_kit.torch_loop import fit

    model, opt, step, predict_val, y_val = _pushed_model([5.0])
    ema = _AveragingEma(model)
    res = fit(model, opt, step, predict_val, y_val, n_train=4, batch_size=8, epochs=1, seed=0, ema=ema,
              log=lambda _: None)
    assert ema.updates == 1
    assert res.best_val_rmse == pytest.approx(0.0)  # validated with the averaged weight 1.0, not the raw 5.0
    assert float(model.weight.detach()) == pytest.approx(1.0)  # and those are the weights restored


def test_warmup_cosine_schedule_by_hand():
    """Linear warmup to the base lr, cosine to zero; warmup capped at half of the steps."""
    import torch
    from boom_kit.torch_loop import warmup_cosine

    def lrs(total, warmup, n):
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=2.0)
        sched = warmup_cosine(opt, total, warmup)
        out = []
        for _ in range(n):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        return out

    got = lrs(10, 2, 12)
    assert got[:3] == pytest.approx([1.0, 2.0, 2.0])  # (step + 1) / warmup, then the cosine's start
    assert got[6] == pytest.approx(1.0)  # t = 4 / 8: half way down
    assert got[10] == pytest.approx(0.0, abs=1e-12) and got[11] == pytest.approx(0.0, abs=1e-12)  # stays at zero
    assert lrs(10, 100, 6)[4:6] == pytest.approx([2.0, 2.0])  # warmup 100 capped at 5: full lr at step 4
    assert lrs(10, 0, 1)[0] == pytest.approx(2.0)  # warmup at least one step
    assert lrs(5, 10, 4) == pytest.approx([1.0, 2.0, 2.0, 1.5])  # cap 5 // 2 = 2 whole steps, then t = 1/3
    assert lrs(2, 1, 3) == pytest.approx([2.0, 2.0, 0.0], abs=1e-12)  # one decay step: t = 1 at the end


def test_loop_reports_each_epochs_own_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    """The accelerator's per-epoch time is that epoch's duration (a positive number below the whole run's)."""
    import time

    from boom_kit import accelerator
    from boom_kit.torch_loop import fit

    seen: list[float] = []
    monkeypatch.setattr(accelerator, "epoch_done", seen.append)
    model, opt, step, predict_val, y_val = _pushed_model([0.5, 1.0, 2.0])
    before = time.perf_counter()
    fit(model, opt, step, predict_val, y_val, n_train=4, batch_size=8, epochs=3, seed=0, log=lambda _: None)
    elapsed = time.perf_counter() - before
    assert len(seen) == 3 and all(0.0 < s <= elapsed for s in seen) and sum(seen) <= elapsed

"""Cross-fitted one-step estimator of a modified treatment policy do(A += delta) (Diaz & van der Laan 2012;
Haneuse & Rotnitzky 2013), with positivity diagnostics that can refuse to report an effect.

Estimand: theta = E[Q(A + delta, X)] - E[Y], Q(a, x) = E[Y | A = a, X = x], over the population the rows are
drawn from.  Efficient influence function of theta at one unit:

    D = r(A, X) * (Y - Q(A, X)) + Q(A + delta, X) - Y - theta,   r(a, x) = g(a - delta | x) / g(a | x)

The one-step estimate is the mean of D + theta with out-of-fold nuisances (cross-fitting: the fold that
evaluates Q and g never fitted them); its standard error is sd(D) / sqrt(n).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

# fit_q(x, a, y) -> predict(x, a)
# fit_ratio(x, a, delta) -> log_ratio(x, a) = log g(a - delta | x) - log g(a | x)
FitQ = Callable[[np.ndarray, np.ndarray, np.ndarray], Callable[[np.ndarray, np.ndarray], np.ndarray]]
FitRatio = Callable[[np.ndarray, np.ndarray, float], Callable[[np.ndarray, np.ndarray], np.ndarray]]


@dataclass(frozen=True)
class SupportRule:
    """When the shift is not supported by the data, no effect is reported.  Defaults come from model.yaml."""

    clip: float = 20.0  # density ratios above this are clipped (and counted)
    min_ess_share: float = 0.2  # effective sample size of the ratios / n
    max_clip_share: float = 0.02  # share of ratios beyond the clip
    max_gate_share: float = 0.05  # share whose shifted exposure is out of support: g(A+d|X) < g(A|X) / clip
    max_shift_sd: float = 1.0  # delta / out-of-fold ridge residual SD of A given X (model-free: an underfit g
    #                            cannot hide a context that determines the exposure)
    max_mean_ratio_dev: float = 0.5  # |mean clipped ratio - 1|: E[r(A, X)] = 1 for a true density ratio


def one_step(y: np.ndarray, q_obs: np.ndarray, q_shift: np.ndarray, ratio: np.ndarray) -> dict:
    """One-step estimate of theta = E[Q(A+d, X)] - E[Y], its influence-function SE and 95% interval."""
    y, q_obs, q_shift, ratio = (np.asarray(v, dtype=np.float64) for v in (y, q_obs, q_shift, ratio))
    n = y.size
    if n < 2:
        raise ValueError(f"one_step needs at least 2 units, got {n}")
    units = ratio * (y - q_obs) + q_shift - y
    theta = float(units.mean())
    eif = units - theta
    se = float(eif.std(ddof=1) / math.sqrt(n))
    return {"effect": theta, "se": se, "ci95": [theta - 1.959964 * se, theta + 1.959964 * se],
            "plug_in": float((q_shift - q_obs).mean()), "psi": float((ratio * (y - q_obs) + q_shift).mean()),
            "mean_y": float(y.mean()), "n": int(n)}


def quantiles(x: np.ndarray) -> dict[str, float]:
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return {}
    return {f"q{q:02d}": float(np.percentile(x, q)) for q in (1, 5, 25, 50, 75, 95, 99)} | {"max": float(x.max())}


def positivity(log_ratio: np.ndarray, log_gate: np.ndarray, rule: SupportRule,
               shift_sd: Optional[float] = None) -> dict:
    """Diagnostics of the density ratios and the verdict ``supported`` (with the reasons when it fails).

    ``log_ratio`` = log g(A - d | X) - log g(A | X) (the weights); ``log_gate`` = log g(A + d | X) - log g(A | X)
    (is the shifted exposure still where the data are?)."""
    log_ratio, log_gate = np.asarray(log_ratio, np.float64), np.asarray(log_gate, np.float64)
    n = log_ratio.size
    log_clip = math.log(rule.clip)
    clipped = np.exp(np.minimum(log_ratio, log_clip))
    ess = float(clipped.sum() ** 2 / (clipped ** 2).sum()) if clipped.sum() > 0 else 0.0
    share_clip = float((log_ratio > log_clip).mean())
    share_gate = float((log_gate < -log_clip).mean())
    mean_ratio = float(clipped.mean())
    reasons = []
    if shift_sd is not None and shift_sd > rule.max_shift_sd:
        reasons.append(f"the shift is {shift_sd:.1f} residual SDs of A given X (linear fit; max {rule.max_shift_sd:g}): "
                       "the context nearly determines the exposure")
    if ess / n < rule.min_ess_share:
        reasons.append(f"effective sample size {ess:.0f} of {n} ({ess / n:.1%}) below {rule.min_ess_share:.0%}")
    if share_clip > rule.max_clip_share:
        reasons.append(f"{share_clip:.1%} of density ratios beyond the clip {rule.clip:g} (max {rule.max_clip_share:.0%})")
    if abs(mean_ratio - 1.0) > rule.max_mean_ratio_dev:
        reasons.append(f"mean density ratio {mean_ratio:.3g} (a density ratio averages 1 over the data; "
                       f"max deviation {rule.max_mean_ratio_dev:g})")
    if share_gate > rule.max_gate_share:
        reasons.append(f"{share_gate:.1%} of units have their shifted exposure out of support "
                       f"(g(A+d|X) < g(A|X)/{rule.clip:g}; max {rule.max_gate_share:.0%})")
    return {"supported": not reasons, "reasons": reasons, "n": int(n), "ess": ess, "ess_share": ess / n,
            "mean_ratio": mean_ratio,
            "share_beyond_clip": share_clip, "share_gate_excluded": share_gate, "shift_in_residual_sd": shift_sd,
            "ratio_quantiles": quantiles(np.exp(np.minimum(log_ratio, 50.0))), "rule": vars(rule)}


def folds(n: int, k: int, seed: int, groups: Optional[np.ndarray] = None) -> np.ndarray:
    """Fold id per row; rows sharing a group (a molecule drawn twice) share a fold."""
    if k < 2:
        raise ValueError(f"cross-fitting needs k >= 2 folds, got {k}")
    keys = np.arange(n) if groups is None else np.unique(groups, return_inverse=True)[1]
    perm = np.random.default_rng(seed).permutation(keys.max() + 1)
    return (perm % k)[keys]


def cross_fit(x: np.ndarray, a: np.ndarray, y: np.ndarray, delta: float, fit_q: FitQ, fit_ratio: FitRatio,
              k: int, seed: int, groups: Optional[np.ndarray] = None) -> dict[str, np.ndarray]:
    """Out-of-fold Q(A, X), Q(A + d, X), log ratio and log gate for every row.

    The gate uses the same ratio model one shift further: log g(A + d | X) / g(A | X) = -log_ratio(X, A + d)."""
    fold = folds(len(y), k, seed, groups)
    from sklearn.linear_model import Ridge

    out = {name: np.empty(len(y)) for name in ("q_obs", "q_shift", "log_ratio", "log_gate", "a_residual")}
    for f in range(k):
        fit, ev = fold != f, fold == f
        if not ev.any():
            continue
        q = fit_q(x[fit], a[fit], y[fit])
        log_ratio = fit_ratio(x[fit], a[fit], delta)
        xe, ae = x[ev], a[ev]
        out["q_obs"][ev], out["q_shift"][ev] = q(xe, ae), q(xe, ae + delta)
        out["log_ratio"][ev], out["log_gate"][ev] = log_ratio(xe, ae), -log_ratio(xe, ae + delta)
        out["a_residual"][ev] = ae - Ridge(alpha=1.0).fit(x[fit], a[fit]).predict(xe)
    return out | {"fold": fold}


def estimate(x: np.ndarray, a: np.ndarray, y: np.ndarray, delta: float, fit_q: FitQ, fit_ratio: FitRatio, k: int,
             seed: int, rule: SupportRule = SupportRule(), groups: Optional[np.ndarray] = None) -> dict:
    """The whole estimator: cross-fit, check positivity, one-step.  ``effect`` is None when support fails."""
    nuis = cross_fit(x, a, y, delta, fit_q, fit_ratio, k, seed, groups)
    diag = positivity(nuis["log_ratio"], nuis["log_gate"], rule, abs(delta) / float(nuis["a_residual"].std()))
    ratio = np.exp(np.minimum(nuis["log_ratio"], math.log(rule.clip)))
    fit = one_step(y, nuis["q_obs"], nuis["q_shift"], ratio)
    result = {"positivity": diag, "k_folds": k, "delta": delta, "plug_in": fit["plug_in"], "mean_y": fit["mean_y"]}
    if diag["supported"]:
        result |= {"effect": fit["effect"], "se": fit["se"], "ci95": fit["ci95"], "psi": fit["psi"], "reason": None}
    else:
        result |= {"effect": None, "se": None, "ci95": None, "psi": None,
                   "reason": "no effect reported, insufficient support: " + "; ".join(diag["reasons"]),
                   "effect_if_ignored": fit["effect"]}
    return result | {"nuisances": nuis}

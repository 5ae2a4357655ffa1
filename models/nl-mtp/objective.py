"""NL-MTP training objective: doubly-robust policy terms, observed fit, propensity, REx, regularisers.

All quantities are in scaled units: y standardised on train, exposure A (exact molecular weight)
standardised on train, so the shift delta = +14.01565 Da is ``delta / std(A)``.

* importance weight of the shift policy do(A += delta): ``w = g(A - delta | x) / g(A | x)``, clipped at
  ``clip`` (20); treated as a constant (the mixture is trained by its NLL only);
* support gate: molecules with ``s(x) < threshold`` (0.6) are left out of the policy terms.  ``s`` is
  trained (BCE, weight ``w_support``) to predict whether the shifted exposure stays inside the support,
  ``g(A + delta | x) >= g(A | x) / clip`` (the same ratio bound as the weight clip);
* unit-level doubly-robust pseudo-outcome ``y~ = m_pol + (y - m_obs) * w`` (detached).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F

from network import mixture_log_prob


@dataclass
class LossWeights:
    dr_unit: float = 1.0
    dr_mean: float = 0.2
    observed: float = 1.0
    nll: float = 0.5
    rex: float = 0.2
    fast: float = 0.1
    desc: float = 0.2
    support: float = 0.1


def importance_weights(mdn: torch.Tensor, a: torch.Tensor, delta: float, clip: float = 20.0) -> torch.Tensor:
    """w = g(A - delta | x) / g(A | x), clipped at ``clip`` (computed in log space, no overflow), detached."""
    log_ratio = mixture_log_prob(mdn, a - delta) - mixture_log_prob(mdn, a)
    return torch.exp(log_ratio.clamp(max=math.log(clip))).detach()


def support_target(mdn: torch.Tensor, a: torch.Tensor, delta: float, clip: float = 20.0) -> torch.Tensor:
    """1 where the shifted exposure keeps density >= g(A|x)/clip, else 0 (detached)."""
    log_ratio = mixture_log_prob(mdn, a + delta) - mixture_log_prob(mdn, a)
    return (log_ratio >= -math.log(clip)).to(a.dtype).detach()


def supported(s: torch.Tensor, threshold: float = 0.6) -> torch.Tensor:
    """Hard support mask (float 0/1) from the support gate: s >= threshold."""
    return (s.detach() >= threshold).to(s.dtype)


def pseudo_outcome(m_pol: torch.Tensor, m_obs: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Doubly-robust unit-level pseudo-outcome y~ = m_pol + (y - m_obs) * w (detached target)."""
    return (m_pol + (y - m_obs) * w).detach()


def rex_penalty(residual_sq: torch.Tensor, env: torch.Tensor) -> torch.Tensor:
    """Variance of the per-environment mean squared errors over the environments present in the batch."""
    envs = torch.unique(env)
    if len(envs) < 2:
        return residual_sq.sum() * 0.0
    risks = torch.stack([residual_sq[env == e].mean() for e in envs])
    return risks.var(unbiased=False)


def nl_mtp_loss(obs: dict, pol: dict, y: torch.Tensor, a: torch.Tensor, env: torch.Tensor, delta: float,
                psi: torch.Tensor, fast_norm: torch.Tensor, desc_target: Optional[torch.Tensor],
                weights: LossWeights, clip: float = 20.0, threshold: float = 0.6) -> tuple[torch.Tensor, dict]:
    """Total loss of one batch and its parts (floats).  ``desc_target`` None = descriptor-delta term off."""
    w = importance_weights(obs["mdn"], a, delta, clip)
    keep = supported(obs["s"], threshold)
    n_keep = keep.sum()
    y_tilde = pseudo_outcome(pol["m"], obs["m"], y, w)
    if n_keep > 0:
        dr_unit = (keep * (pol["m"] - y_tilde) ** 2).sum() / n_keep
        dr_mean = ((keep * y_tilde).sum() / n_keep - psi) ** 2
    else:
        dr_unit = dr_mean = pol["m"].sum() * 0.0 + psi * 0.0
    residual_sq = (obs["m"] - y) ** 2
    observed = residual_sq.mean()
    nll = -mixture_log_prob(obs["mdn"], a).mean()
    rex = rex_penalty(residual_sq, env)
    fast = (pol["alpha"] ** 2).mean() + fast_norm
    s_target = support_target(obs["mdn"], a, delta, clip)
    support = F.binary_cross_entropy(obs["s"].clamp(1e-6, 1 - 1e-6), s_target)
    total = (weights.dr_unit * dr_unit + weights.dr_mean * dr_mean + weights.observed * observed
             + weights.nll * nll + weights.rex * rex + weights.fast * fast + weights.support * support)
    parts = {"dr_unit": dr_unit, "dr_mean": dr_mean, "observed": observed, "nll": nll, "rex": rex,
             "fast": fast, "support": support}
    if desc_target is not None:
        ok = torch.isfinite(desc_target).all(dim=1)
        desc = ((pol["desc"][ok] - desc_target[ok]) ** 2).mean() if ok.any() else pol["desc"].sum() * 0.0
        total = total + weights.desc * desc
        parts["desc"] = desc
    return total, {k: float(v.detach()) for k, v in parts.items()} | {"kept": float(n_keep), "w_max": float(w.max())}

"""NL-MTP training objective: the observed fit, the propensity head, REx, and the policy world's one
supervised target (the descriptor change of one CH2 insertion), with the fast-weight regulariser.

All quantities are in scaled units: y standardised on train, exposure A (exact molecular weight)
standardised on train.

The policy effect is not learned here: it is estimated after training by the cross-fitted one-step estimator
(``estimator.py``).  The seed's doubly-robust policy terms (a pseudo-outcome built from a detached m_pol,
whose gradient did not depend on m_pol) and the support-gate BCE (trained from the same propensity it was meant
to check) were removed (issue 20).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from network import mixture_log_prob


@dataclass
class LossWeights:
    observed: float = 1.0
    nll: float = 0.5
    rex: float = 0.2
    fast: float = 0.1
    desc: float = 0.2


def rex_penalty(residual_sq: torch.Tensor, env: torch.Tensor) -> torch.Tensor:
    """Variance of the per-environment mean squared errors over the environments present in the batch."""
    envs = torch.unique(env)
    if len(envs) < 2:
        return residual_sq.sum() * 0.0
    risks = torch.stack([residual_sq[env == e].mean() for e in envs])
    return risks.var(unbiased=False)


def nl_mtp_loss(obs: dict, pol: Optional[dict], y: torch.Tensor, a: torch.Tensor, env: torch.Tensor,
                fast_norm: Optional[torch.Tensor], desc_target: Optional[torch.Tensor],
                weights: LossWeights) -> tuple[torch.Tensor, dict]:
    """Total loss of one batch and its parts (floats).

    ``obs`` is the observed world (fast weights off); ``pol`` the policy world (fast weights on), or None when the
    descriptor-delta target is off (``desc_target`` None): then the policy world has no target and is not run.
    """
    residual_sq = (obs["m"] - y) ** 2
    observed = residual_sq.mean()
    nll = -mixture_log_prob(obs["mdn"], a).mean()
    rex = rex_penalty(residual_sq, env)
    total = weights.observed * observed + weights.nll * nll + weights.rex * rex
    parts = {"observed": observed, "nll": nll, "rex": rex}
    if pol is not None and desc_target is not None:
        ok = torch.isfinite(desc_target).all(dim=1)
        desc = ((pol["desc"][ok] - desc_target[ok]) ** 2).mean() if ok.any() else pol["desc"].sum() * 0.0
        fast = (pol["alpha"] ** 2).mean() + fast_norm
        total = total + weights.desc * desc + weights.fast * fast
        parts |= {"desc": desc, "fast": fast}
    return total, {k: float(v.detach()) for k, v in parts.items()}

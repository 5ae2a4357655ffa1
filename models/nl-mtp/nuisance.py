"""Nuisance models of the policy estimator, fitted on observed data only:
Q(a, x) by gradient-boosted trees and g(a | x) by a mixture-density network (the seed's MDN propensity,
here on the policy context only, so the exposure is not determined by what it conditions on)."""
from __future__ import annotations

import math

import numpy as np


def hgb_q(max_iter: int = 300, learning_rate: float = 0.06, max_leaf_nodes: int = 31, seed: int = 0):
    """fit_q for the estimator: sklearn HistGradientBoosting on [a, x], inner early stopping."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    def fit(x: np.ndarray, a: np.ndarray, y: np.ndarray):
        model = HistGradientBoostingRegressor(max_iter=max_iter, learning_rate=learning_rate,
                                              max_leaf_nodes=max_leaf_nodes, early_stopping=True,
                                              validation_fraction=0.1, n_iter_no_change=20, random_state=seed)
        model.fit(np.c_[a, x], y)
        return lambda xe, ae: model.predict(np.c_[ae, xe])

    return fit


def mdn_g(n_components: int = 4, hidden: int = 64, epochs: int = 300, lr: float = 3e-3, weight_decay: float = 1e-4,
          seed: int = 0):
    """fit_g for the estimator: a small MLP giving a Gaussian mixture for a | x (standardised inside),
    full-batch AdamW, best weights on the kit's seeded 10% validation slice of the rows it is given; returns
    log g(a | x) in the caller's units."""
    import torch
    from torch import nn

    from boom_kit import validation_split

    def log_prob(params, a):
        logits, mu, raw = params.chunk(3, dim=-1)
        sigma = nn.functional.softplus(raw) + 1e-3
        comp = -0.5 * ((a[:, None] - mu) / sigma) ** 2 - torch.log(sigma) - 0.5 * math.log(2 * math.pi)
        return torch.logsumexp(torch.log_softmax(logits, -1) + comp, -1)

    def fit(x: np.ndarray, a: np.ndarray):
        torch.manual_seed(seed)
        xm, xs = x.mean(0), x.std(0) + 1e-8
        am, as_ = float(a.mean()), float(a.std() or 1.0)
        X = torch.as_tensor((x - xm) / xs, dtype=torch.float32)
        A = torch.as_tensor((a - am) / as_, dtype=torch.float32)
        tr, va = (torch.as_tensor(i) for i in validation_split(len(a), seed))
        net = nn.Sequential(nn.Linear(x.shape[1], hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
                            nn.Linear(hidden, 3 * n_components))
        opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
        best, state = float("inf"), None
        for _ in range(epochs):
            opt.zero_grad()
            loss = -log_prob(net(X[tr]), A[tr]).mean()
            loss.backward()
            opt.step()
            with torch.no_grad():
                v = float(-log_prob(net(X[va]), A[va]).mean())
            if v < best:
                best, state = v, {k: t.clone() for k, t in net.state_dict().items()}
        net.load_state_dict(state)
        net.eval()

        def g(xe: np.ndarray, ae: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                p = net(torch.as_tensor((xe - xm) / xs, dtype=torch.float32))
                lp = log_prob(p, torch.as_tensor((ae - am) / as_, dtype=torch.float32))
            return lp.double().numpy() - math.log(as_)

        return g

    return fit

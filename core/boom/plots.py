"""Parity plots in BOOM's style: OOD (dark blue) under ID (dark orange), y = x dashed, RMSE in the legend."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

ID_COLOUR = "#c55a11"  # dark orange
OOD_COLOUR = "#1f3b73"  # dark blue


def parity_plot(path: Path, title: str, unit: str, id_true, id_pred, ood_true, ood_pred, id_rmse: float, ood_rmse: float) -> Path:
    fig, ax = plt.subplots(figsize=(5.2, 5.0), dpi=120)
    ax.scatter(ood_true, ood_pred, s=9, alpha=0.6, color=OOD_COLOUR, label=f"OOD (RMSE {ood_rmse:.3g})", zorder=2)
    ax.scatter(id_true, id_pred, s=9, alpha=0.6, color=ID_COLOUR, label=f"ID (RMSE {id_rmse:.3g})", zorder=3)
    values = np.concatenate([np.ravel(a) for a in (id_true, id_pred, ood_true, ood_pred)])
    lo, hi = float(values.min()), float(values.max())
    pad = 0.03 * (hi - lo or 1.0)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "k--", lw=1, zorder=1)
    ax.set_xlim(lo - pad, hi + pad)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_xlabel(f"true ({unit})")
    ax.set_ylabel(f"predicted ({unit})")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper left", frameon=False)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path

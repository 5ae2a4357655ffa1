"""Figures: parity plots in BOOM's style (OOD dark blue under ID dark orange, y = x dashed, RMSE in the legend),
the leaderboard's OOD heatmap and its extrapolation view."""
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


def extrapolation_plot(path: Path, title: str, unit: str, bins, series: list[tuple[str, np.ndarray]]) -> Path:
    """Mean OOD |error| per distance bin (``boom.evidence.Bins``), one line per configuration."""
    fig, ax = plt.subplots(figsize=(7.0, 4.2), dpi=110)
    x = np.arange(len(bins.labels))
    for label, values in series:
        ax.plot(x, values, marker="o", lw=1.2, label=label if len(label) <= 48 else label[:47] + "…")
    ax.set_xticks(x, [f"{lab}\n(n={n})" for lab, n in zip(bins.labels, bins.counts)], fontsize=8)
    lo, hi = bins.train_range
    ax.set_xlabel(f"OOD label's distance outside the training range [{lo:.4g}, {hi:.4g}] ({unit})")
    ax.set_ylabel(f"mean |error| ({unit})")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, frameon=False, loc="best")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def ood_heatmap(path: Path, labels: list[str], tasks: list[str], grid: np.ndarray, failed: set) -> Path:
    """Rows x tasks of OOD RMSE (``grid``, NaN where none) divided by each task's best; 'fail' where ``failed``."""
    best = np.array([np.min(col[np.isfinite(col)]) if np.isfinite(col).any() else np.nan for col in grid.T])
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = grid / best
    shown = [lab if len(lab) <= 48 else lab[:47] + "…" for lab in labels]
    width = 1.1 * len(tasks) + 0.075 * max(len(lab) for lab in shown) + 2.5  # tick labels, colour bar, title
    fig, ax = plt.subplots(figsize=(max(6.0, width), 0.45 * len(labels) + 1.8), dpi=110)
    finite = norm[np.isfinite(norm)]
    vmax = max(2.0, float(finite.max())) if finite.size else 2.0
    im = ax.imshow(np.ma.masked_invalid(norm), cmap="viridis_r", vmin=1.0, vmax=vmax, aspect="auto")
    ax.set_xticks(range(len(tasks)), tasks, rotation=40, ha="right")
    ax.set_yticks(range(len(labels)), shown)
    for i in range(len(labels)):
        for j in range(len(tasks)):
            v = norm[i, j]
            text = f"{v:.2f}" if np.isfinite(v) else "fail" if (i, j) in failed else ""
            ax.text(j, i, text, ha="center", va="center", fontsize=8,
                    color="black" if not np.isfinite(v) or v < 1 + 0.5 * (vmax - 1) else "white")
    fig.colorbar(im, ax=ax, label="× best OOD RMSE")
    ax.set_title("OOD RMSE normalised per task (1 = best)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path

"""PNG plots of a search: the front of every generation (colour = generation) and chosen points."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

__all__ = ["plot_fronts"]

_LABELS = {"top1": "top-1 accuracy", "error_pct": "top-1 error (%)", "macs": "MACs", "params": "parameters",
           "latency_ms": "latency (ms)"}


def plot_fronts(path: str | os.PathLike, objective_names: Sequence[str], history: Sequence[np.ndarray],
                final: np.ndarray | None = None, chosen: Mapping[str, np.ndarray] | None = None,
                others: Mapping[str, np.ndarray] | None = None, title: str = "") -> Path:
    """Scatter the first two objectives of each generation's front, oldest pale, newest dark.

    ``history``: one ``[k, n_obj]`` array (objective values) per generation; ``final``: the final
    front, drawn as a line; ``chosen``: labelled points (``{"knee": values, ...}``); ``others``:
    extra point sets for comparison (``{"random search": values}``).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # accuracy reads best on the vertical axis, costs on the horizontal one
    if len(objective_names) > 1 and objective_names[0] in ("top1", "error_pct"):
        flip = lambda F: np.asarray(F)[:, [1, 0] + list(range(2, np.asarray(F).shape[1]))] if len(F) else np.asarray(F)  # noqa: E731
        objective_names = [objective_names[1], objective_names[0], *objective_names[2:]]
        history = [flip(F) for F in history]
        final = None if final is None else flip(final)
        chosen = {k: flip(np.asarray(v, dtype=float).reshape(1, -1))[0] for k, v in (chosen or {}).items()}
        others = {k: flip(v) for k, v in (others or {}).items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 5), dpi=110)
    n = len(history)
    cmap = plt.get_cmap("viridis")
    step = max(1, n // 60)  # at most ~60 generations drawn; the last one always
    drawn = list(range(0, n, step)) + ([n - 1] if n and (n - 1) % step else [])
    for g in drawn:
        F = np.asarray(history[g])
        if len(F):
            ax.scatter(F[:, 0], F[:, 1], s=6, color=cmap(g / max(n - 1, 1)), alpha=0.5, linewidths=0)
    if n:
        sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(1, max(n, 2)))
        fig.colorbar(sm, ax=ax, label="generation")
    for name, F in (others or {}).items():
        F = np.asarray(F)
        if len(F):
            ax.scatter(F[:, 0], F[:, 1], s=14, marker="x", label=name, alpha=0.8)
    if final is not None and len(final):
        order = np.argsort(final[:, 0])
        ax.plot(final[order, 0], final[order, 1], "-o", color="black", ms=3, lw=1, label="final front")
    for name, v in (chosen or {}).items():
        v = np.asarray(v, dtype=float).reshape(-1)
        ax.scatter([v[0]], [v[1]], s=80, facecolors="none", edgecolors="red", linewidths=1.5, zorder=5)
        ax.annotate(name, (v[0], v[1]), xytext=(6, 6), textcoords="offset points", fontsize=8, color="red")
    ax.set_xlabel(_LABELS.get(objective_names[0], objective_names[0]))
    ax.set_ylabel(_LABELS.get(objective_names[1], objective_names[1]) if len(objective_names) > 1 else "")
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    if (others or final is not None):
        ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)
    return path

"""NAT's progress plot: hypervolume and surrogate Kendall's tau per iteration."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..io import save_figure

__all__ = ["plot_progress"]


def plot_progress(path: str | os.PathLike, history: Sequence[Mapping[str, Any]], title: str = "") -> Path:
    """Left: archive-front hypervolume after measuring and after adaptation + re-measuring.
    Right: the chosen surrogate's cross-validated tau and its tau on the archs it proposed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    its = [h["iteration"] for h in history if "hv" in h]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4))
    ax1.plot(its, [h["hv"] for h in history if "hv" in h], "-o", label="after measuring")
    adapted = [(h["iteration"], h["hv_after_adaptation"]) for h in history if "hv_after_adaptation" in h]
    if adapted:
        ax1.plot(*zip(*adapted), "-s", label="after adaptation")
    ax1.set(xlabel="iteration", ylabel="hypervolume (archive front)", title=title or "NAT progress")
    ax1.legend(fontsize=8)
    cv = [(h["iteration"], h["surrogate"]["tau"]) for h in history if h.get("surrogate")]
    new = [(h["iteration"], h["tau_new"]) for h in history if h.get("tau_new") is not None]
    if cv:
        ax2.plot(*zip(*cv), "-o", label="cross-validated (archive)")
        for (i, t), h in zip(cv, [h for h in history if h.get("surrogate")]):
            ax2.annotate(h["surrogate"]["chosen"], (i, t), xytext=(0, 5), textcoords="offset points", fontsize=7,
                         ha="center")
    if new:
        ax2.plot(*zip(*new), "-s", label="on the archs it proposed")
    ax2.set(xlabel="iteration", ylabel="Kendall tau", title="surrogate ranking quality", ylim=(-1, 1))
    ax2.axhline(0.7, color="grey", lw=0.8, ls="--")
    ax2.legend(fontsize=8)
    return save_figure(fig, path)

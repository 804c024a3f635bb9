"""Additive cost tables: exact cost of a genome, expected cost under the generator's distribution.

Every cost nni-eas budgets is a sum over the network's layers: MACs and parameters
(:class:`~nni_eas.costs.CostModel`) and table latency (:class:`~nni_eas.export.lut.LatencyModel`)
all come as ``base[w, r]`` (stem, head, classifier) plus ``block[slot, w, k, e, r]`` for each
active block slot. :class:`CostTable` holds one metric in that form and answers two questions:

* :meth:`CostTable.exact`: the cost of integer genomes (numpy, for the repair step);
* :meth:`CostTable.expected`: the cost *expected* under a factorised distribution over the genes
  (torch, differentiable in the probabilities). This is the budget term of the generator's loss:
  with independent genes the expectation of a sum of products is exact, no sampling needed::

      E[cost] = sum_{w,r} p(w) p(r) base[w,r]
              + sum_slot P(slot active) sum_{w,k,e,r} p(w) p(k_slot) p(e_slot) p(r) block[slot,w,k,e,r]

  where ``P(slot j of stage s active) = sum_{d > j} p(d_s)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from typing import TYPE_CHECKING

import numpy as np

from ..config import ConfigError
from ..spaces.config import OFAMobileNetV3Config

if TYPE_CHECKING:  # torch only for the generator's expected cost: budgets are checked without it
    import torch

__all__ = ["CostTable", "cost_tables", "load_tables", "METRICS", "GeneProbs"]

METRICS = ("macs", "params", "latency_ms")


@dataclass
class GeneProbs:
    """Choice probabilities of a batch of scenarios: ``k [B,N,K]``, ``e [B,N,E]``, ``d [B,S,D]``,
    ``r [B,R]``, ``w [B,W]``."""

    k: torch.Tensor
    e: torch.Tensor
    d: torch.Tensor
    r: torch.Tensor
    w: torch.Tensor


class CostTable:
    """One additive metric of one space: ``base [W, R]`` + ``block [N, W, K, E, R]``."""

    def __init__(self, name: str, cfg: OFAMobileNetV3Config, base: np.ndarray, block: np.ndarray):
        W, K, E, R = len(cfg.width_mults), len(cfg.kernel_sizes), len(cfg.expand_ratios), len(cfg.resolutions)
        base = np.broadcast_to(np.asarray(base, dtype=np.float64).reshape(W, -1), (W, R))
        block = np.broadcast_to(np.asarray(block, dtype=np.float64).reshape(cfg.num_slots, W, K, E, -1),
                                (cfg.num_slots, W, K, E, R))
        if not (np.all(np.isfinite(base)) and np.all(np.isfinite(block))):
            raise ConfigError(f"cost table {name!r} does not cover every choice of space {cfg.name!r}; "
                              "build a latency table for this space (nni-eas latency --build) or restrict the space to "
                              "the choices the table has (e.g. its resolutions)")
        self.name, self.cfg = name, cfg
        self.base, self.block = np.ascontiguousarray(base), np.ascontiguousarray(block)
        self._torch: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        n, s, d = cfg.num_slots, cfg.num_stages, cfg.max_depth
        self._slot_stage = np.repeat(np.arange(s), d)
        self._slot_index = np.tile(np.arange(d), s)
        self._depths = np.asarray(cfg.depths)
        # [N, D]: slot j runs when the stage's depth choice is > j
        self._active_by_depth = self._slot_index[:, None] < self._depths[None, :]   # [N, D] bool
        self.scale = float(self.minmax()[1])

    # ---- exact ---------------------------------------------------------------------------------
    def exact(self, genomes: np.ndarray) -> np.ndarray:
        """Cost of every genome ``[P, L]`` (choice indices)."""
        cfg = self.cfg
        g = np.atleast_2d(np.asarray(genomes, dtype=np.int64))
        n, s = cfg.num_slots, cfg.num_stages
        k, e = g[:, :n], g[:, n:2 * n]
        depth = self._depths[g[:, 2 * n:2 * n + s]]
        r, w = g[:, 2 * n + s], g[:, 2 * n + s + 1]
        active = self._slot_index[None] < depth[:, self._slot_stage]
        block = self.block[np.arange(n)[None], w[:, None], k, e, r[:, None]]
        return self.base[w, r] + (block * active).sum(1)

    def minmax(self) -> tuple[float, float]:
        """Exact smallest and largest cost over the whole space (per (w, r): cheapest / dearest
        choice per slot, best depth per stage)."""
        cfg = self.cfg
        flat = self.block.reshape(cfg.num_slots, len(cfg.width_mults), -1, len(cfg.resolutions))
        lo, hi = np.inf, -np.inf
        for wi in range(len(cfg.width_mults)):
            for ri in range(len(cfg.resolutions)):
                for pick, better, total0 in ((flat[:, wi, :, ri].min(1), min, self.base[wi, ri]),
                                             (flat[:, wi, :, ri].max(1), max, self.base[wi, ri])):
                    total = total0
                    for st in range(cfg.num_stages):
                        cum = np.cumsum(pick[st * cfg.max_depth:(st + 1) * cfg.max_depth])
                        total += better(cum[d - 1] for d in cfg.depths)
                    if better is min:
                        lo = min(lo, total)
                    else:
                        hi = max(hi, total)
        return float(lo), float(hi)

    # ---- expected (differentiable) ---------------------------------------------------------------
    def _tensors(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        import torch

        if self._torch is None or self._torch[0].device != device:
            self._torch = (torch.tensor(self.base / self.scale, dtype=torch.float32, device=device),
                           torch.tensor(self.block / self.scale, dtype=torch.float32, device=device),
                           torch.tensor(self._active_by_depth, dtype=torch.float32, device=device))
        return self._torch

    def expected(self, p: GeneProbs) -> torch.Tensor:
        """``[B]`` expected cost under independent per-gene distributions (in table units)."""
        import torch

        base, block, active_by_depth = self._tensors(p.r.device)
        fixed = torch.einsum("bw,br,wr->b", p.w, p.r, base)
        per_slot = torch.einsum("bw,bnk,bne,br,nwker->bn", p.w, p.k, p.e, p.r, block)      # [B, N]
        stage_d = p.d[:, self._slot_stage]                                               # [B, N, D]
        active = (stage_d * active_by_depth[None]).sum(-1)                                # [B, N]
        return (fixed + (per_slot * active).sum(1)) * self.scale


def cost_tables(cfg: OFAMobileNetV3Config, metrics: list[str] | tuple[str, ...], num_classes: int | None = None,
                latency_model=None) -> dict[str, CostTable]:
    """The :class:`CostTable` of each budgeted metric (``macs``, ``params``, ``latency_ms``)."""
    out: dict[str, CostTable] = {}
    cm = None
    for m in metrics:
        if m not in METRICS:
            raise ConfigError(f"budget metric {m!r} is not supported; allowed: {', '.join(METRICS)}")
        if m in ("macs", "params") and cm is None:
            from ..costs import CostModel

            cm = CostModel(cfg, num_classes=num_classes)
        if m == "macs":
            out[m] = CostTable(m, cfg, cm.base_macs, cm.block_macs)
        elif m == "params":
            out[m] = CostTable(m, cfg, cm.base_params[:, None], cm.block_params[..., None])
        else:
            if latency_model is None:
                raise ConfigError("a latency_ms budget needs a latency table of the space "
                                  "(latency_table: path to a table built with `nni-eas latency --build`)")
            out[m] = CostTable(m, cfg, latency_model.base_ms, latency_model.block_ms)
    return out


def budget_check(tables: Mapping[str, CostTable], genomes: np.ndarray, budgets: Mapping[str, float]) -> np.ndarray:
    """``[P]`` boolean: genome meets every budget."""
    ok = np.ones(len(np.atleast_2d(genomes)), dtype=bool)
    for m, b in budgets.items():
        ok &= tables[m].exact(genomes) <= b * (1 + 1e-9)
    return ok


def load_tables(cfg, metrics, num_classes: int | None = None, latency_table: str | None = None) -> dict[str, CostTable]:
    """Cost tables of ``metrics`` for space ``cfg`` (a latency table file for ``latency_ms``)."""
    lm = None
    if "latency_ms" in metrics:
        if not latency_table:
            raise ConfigError("generator.metrics has latency_ms: set latency_table to a table of the space "
                              "(built with `nni-eas latency --build`)")
        from ..export.lut import load_latency_table

        lm = load_latency_table(latency_table, cfg).model(cfg, num_classes)
    return cost_tables(cfg, list(metrics), num_classes=num_classes, latency_model=lm)

"""Generator proposals re-ranked on validation (nni_eas.eas.propose): budgets hold, budgets are used,
and for one task a larger budget never scores lower than a smaller one (a known reward)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nni_eas.eas import ArchGenerator, Scenario, cost_tables
from nni_eas.eas.budget import budget_check
from nni_eas.eas.propose import choose, fill, pool_by_task, propose
from nni_eas.spaces.config import load_space_config

SPACE = load_space_config("ofa_mbv3_small", num_classes=10, resolutions=[12, 14, 16])


def _setup(seed: int = 0):
    torch.manual_seed(seed)
    tables = cost_tables(SPACE, ["macs", "params"])
    gen = ArchGenerator(SPACE, 10, list(tables), {m: t.minmax() for m, t in tables.items()}, hidden=32)
    lo, hi = tables["macs"].minmax()
    fracs = [0.05, 0.2, 0.4, 0.6, 0.8, 1.0]
    scen = [Scenario(f"t{f}", (1, 4, 7), {"macs": lo + f * (hi - lo)}) for f in fracs]
    scen += [Scenario("other", (0, 9), {"macs": lo + 0.5 * (hi - lo), "params": 2e6})]
    return tables, gen, scen


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_candidate_meets_its_budgets_and_fill_uses_them(seed):
    tables, gen, scen = _setup(seed)
    props = pool_by_task(scen, propose(gen, tables, scen, samples=6, seed=seed), tables)
    for s, p in zip(scen, props):
        g = np.asarray(p.genomes)
        assert budget_check(tables, g, s.budgets).all(), s.name
        assert p.origin[0] == "argmax" and len(p.genomes) == len(set(map(tuple, p.genomes))) >= 2
        # a filled arch cannot be raised by one more choice without breaking a budget or costing nothing more
        use = max(tables["macs"].exact(g) / s.budgets["macs"])
        assert use > 0.8, (s.name, use)


def test_fill_never_lowers_cost_and_stops_at_the_budget():
    tables, gen, scen = _setup()
    logp = [np.log(np.full(n, 1.0 / n)) for n in [3] * (2 * SPACE.num_slots) + [3] * SPACE.num_stages + [3, 2]]
    smallest = np.zeros(len(logp), dtype=np.int64)
    for frac in (0.1, 0.5, 0.9):
        lo, hi = tables["macs"].minmax()
        b = {"macs": lo + frac * (hi - lo)}
        g = fill(smallest, logp, tables, b)
        c = tables["macs"].exact(g[None])[0]
        assert tables["macs"].exact(smallest[None])[0] <= c <= b["macs"]
        # no single raise keeps the budget and adds cost
        for i in range(len(g)):
            h = g.copy()
            if h[i] + 1 < len(logp[i]):
                h[i] += 1
                ch = tables["macs"].exact(h[None])[0]
                assert ch > b["macs"] or ch <= c + 1e-9


@pytest.mark.parametrize("reward", ["macs", "depth_minus_kernel", "random"])
def test_larger_budget_never_scores_lower_for_the_same_task(reward):
    """Monotonicity on a known, deterministic reward: the pooled choice of a larger budget is at
    least as good as that of any smaller budget of the same task."""
    tables, gen, scen = _setup()
    props = pool_by_task(scen, propose(gen, tables, scen, samples=4), tables)

    def score(g: np.ndarray) -> np.ndarray:
        if reward == "macs":
            return tables["macs"].exact(g)
        if reward == "depth_minus_kernel":
            n, s = SPACE.num_slots, SPACE.num_stages
            return g[:, 2 * n:2 * n + s].sum(1) - 0.5 * g[:, :n].sum(1)
        return np.array([np.random.default_rng([int(v) for v in r]).random() for r in g])  # fixed per arch

    same = [i for i, s in enumerate(scen) if s.classes == (1, 4, 7)]
    best = []
    for i in same:
        k, s = choose(props[i].genomes, score)
        best.append(s[k])
    assert all(b2 >= b1 - 1e-12 for b1, b2 in zip(best, best[1:])), best


def test_choose_skips_failed_candidates_and_refuses_all_failed():
    k, s = choose([[0], [1], [2]], lambda g: np.array([np.nan, 0.5, 0.5]))
    assert k == 1
    with pytest.raises(RuntimeError, match="every candidate"):
        choose([[0]], lambda g: np.array([np.nan]))


def test_ties_on_validation_go_to_the_larger_subnet_then_the_earlier_candidate():
    k, _ = choose([[0], [1], [2], [3]], lambda g: np.array([0.9, 0.95, 0.95, 0.95]), prefer=[1e6, 2e6, 5e6, 5e6])
    assert k == 2
    k, _ = choose([[0], [1], [2]], lambda g: np.array([0.95, 0.95, 0.9]))
    assert k == 0

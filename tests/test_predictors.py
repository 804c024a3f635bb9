"""Accuracy predictors: one interface, OFA's published predictor read safely, feature encodings,
MLP fitting with Kendall's tau on held-out archs."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from scipy import stats

from nni_eas.config import ConfigError
from nni_eas.encodings import arch_from_ofa2, archs_to_genomes, archs_to_predictor_features, genomes_to_archs
from nni_eas.predictors import (
    MLPPredictor,
    OFAAccuracyPredictor,
    Predictor,
    encode,
    kendall_tau,
    load_state_dict_file,
    measure_accuracy_dataset,
    ofa2_error_pct,
    regression_scores,
)
from nni_eas.search import GenomeLayout, random_genomes
from nni_eas.spaces import canonical_arch, load_space_config

OFA = load_space_config("ofa_mbv3_w1.0", resolutions=[160, 176, 192, 208, 224])
SMALL = load_space_config("ofa_mbv3_small")


@pytest.fixture(scope="module")
def ofa_predictor(reference_dir):
    return OFAAccuracyPredictor.from_file(reference_dir / "ofa" / "acc_predictor.pth")


def test_ofa_predictor_loads_without_unsafe_unpickling(reference_dir, ofa_predictor):
    raw = (reference_dir / "ofa" / "acc_predictor.pth").read_bytes()
    assert not raw.startswith(b"PK")                      # the legacy (pre-1.6) format, not zip
    sd = load_state_dict_file(reference_dir / "ofa" / "acc_predictor.pth")
    assert {k: tuple(v.shape) for k, v in sd.items()} == {
        "0.weight": (400, 128), "0.bias": (400,), "2.weight": (400, 400), "2.bias": (400,),
        "4.weight": (400, 400), "4.bias": (400,), "6.weight": (1, 400), "6.bias": (1,)}
    assert all(v.device.type == "cpu" for v in sd.values())
    top1 = ofa_predictor.predict_genomes(OFA, random_genomes(OFA, 200, 0))
    assert 0.6 < top1.min() and top1.max() < 0.9          # ImageNet top-1 of OFA subnets


def test_files_that_run_code_are_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    for legacy in (True, False):
        path = tmp_path / f"evil-{legacy}.pth"
        torch.save({"0.weight": Evil()}, path, _use_new_zipfile_serialization=not legacy)
        with pytest.raises(ConfigError, match="weights_only"):
            load_state_dict_file(path)
    path = tmp_path / "plain.pkl"
    path.write_bytes(pickle.dumps({"x": 1}))
    with pytest.raises(ConfigError):
        OFAAccuracyPredictor.from_file(path)


def test_ofa2_error_is_100_minus_100_times_predicted_top1(reference_dir, ofa_predictor):
    from nni_eas.io import safe_pickle_load

    data = list(safe_pickle_load(reference_dir / "ofa2" / "res_nsga2_results.pkl"))
    cfg = load_space_config("ofa_mbv3_w1.0")
    G = archs_to_genomes(cfg, [arch_from_ofa2(cfg, d[2]) for d in data])
    published = np.array([d[1] for d in data])
    exact = ofa2_error_pct(ofa_predictor.raw(ofa_predictor.features(cfg, G)))
    assert np.abs(exact - published).max() < 1e-4
    assert np.abs(100 * (1 - ofa_predictor.predict_genomes(cfg, G)) - published).max() < 1e-4
    # the other readings of "error" are far off: accuracy in [0, 1] (not %), or 1 - p
    assert np.abs((1 - ofa_predictor.predict_genomes(cfg, G)) - published).min() > 10


def test_feature_encodings(ofa_predictor):
    G = random_genomes(OFA, 64, 1)
    archs = genomes_to_archs(OFA, G)
    assert np.array_equal(encode("ofa", OFA, G), archs_to_predictor_features(OFA, archs))
    canon = archs_to_genomes(OFA, [canonical_arch(OFA, a) for a in archs])
    for enc in ("ofa", "onehot", "index"):           # features describe networks, not genomes
        assert np.array_equal(encode(enc, OFA, G), encode(enc, OFA, canon))
    oh = encode("onehot", SMALL, random_genomes(SMALL, 32, 2))
    lay = GenomeLayout(SMALL)
    n = SMALL.num_slots
    g = random_genomes(SMALL, 32, 2)
    active = lay.active(g)
    assert np.array_equal(oh[:, : 3 * n].reshape(32, n, 3).sum(-1), active)   # one kernel per active slot
    assert np.all(oh.sum(1) == 2 * active.sum(1) + SMALL.num_stages + 2)
    with pytest.raises(ConfigError, match="allowed: ofa, onehot, index"):
        encode("graph", SMALL, g)
    with pytest.raises(ConfigError, match="OFA's predictor encodes resolutions 112..239"):
        encode("ofa", SMALL, g)                      # resolutions outside OFA's 112..239


def test_mlp_learns_a_ranking_on_held_out_archs(ofa_predictor, tmp_path):
    """Fitted on (arch, accuracy) pairs, an MLP ranks unseen archs (Kendall's tau, scipy)."""
    G = random_genomes(OFA, 700, 3)
    y = ofa_predictor.predict_genomes(OFA, G)        # a realistic accuracy landscape over the space
    train, test = slice(0, 500), slice(500, 700)
    results = {}
    for enc in ("onehot", "ofa"):
        p = MLPPredictor(hidden=(128, 128), encoding=enc, epochs=80, seed=0).fit_genomes(OFA, G[train], y[train])
        results[enc] = p.score_genomes(OFA, G[test], y[test])
    assert results["onehot"]["kendall_tau"] > 0.7 and results["ofa"]["kendall_tau"] > 0.7
    assert results["ofa"]["kendall_tau"] == pytest.approx(stats.kendalltau(y[test], p.predict_genomes(OFA, G[test])).statistic)
    # a predictor that never saw the landscape ranks no better than chance
    blind = MLPPredictor(hidden=(128, 128), epochs=80, seed=0).fit_genomes(OFA, G[train], np.random.default_rng(0).permutation(y[train]))
    assert abs(blind.score_genomes(OFA, G[test], y[test])["kendall_tau"]) < 0.3
    # save / load keeps predictions
    path = p.save(tmp_path / "mlp.pt")
    q = MLPPredictor.load(path)
    assert np.allclose(q.predict_genomes(OFA, G[test]), p.predict_genomes(OFA, G[test]))
    with pytest.raises(ConfigError, match="not fitted"):
        MLPPredictor().predict(np.zeros((1, 3)))


def test_scores_are_scipy_kendall_tau():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=50), rng.normal(size=50)
    assert kendall_tau(a, b) == pytest.approx(stats.kendalltau(a, b).statistic)
    assert kendall_tau(a, a) == 1.0 and kendall_tau(a, -a) == -1.0
    s = regression_scores(a, a + 0.1)
    assert s["kendall_tau"] == 1.0 and s["rmse"] == pytest.approx(0.1) and s["n"] == 50


def test_base_class_takes_new_surrogates():
    """A NAT-style surrogate only implements fit/predict; genome helpers and scoring come free."""

    class NearestNeighbour(Predictor):
        encoding = "index"

        def fit(self, X, y):
            self.X, self.y = np.asarray(X), np.asarray(y)
            return self

        def predict(self, X):
            d = ((np.asarray(X)[:, None, :] - self.X[None]) ** 2).sum(-1)
            return self.y[d.argmin(1)]

    G = random_genomes(SMALL, 40, 5)
    y = G.sum(1).astype(float)
    nn_ = NearestNeighbour().fit_genomes(SMALL, G, y)
    assert np.array_equal(nn_.predict_genomes(SMALL, G), y)
    assert nn_.score_genomes(SMALL, G, y)["kendall_tau"] == 1.0


def test_measured_pairs_from_a_supernet(tmp_path):
    """The data pipeline from a supernet checkpoint: distinct archs, BN-recalibrated top-1."""
    from nni_eas.checkpoint import save_supernet
    from nni_eas.search import SubnetEvaluation
    from nni_eas.spaces import OFAMobileNetV3

    torch.manual_seed(0)
    path = save_supernet(tmp_path / "s.pt", OFAMobileNetV3("ofa_mbv3_small", num_classes=10, resolutions=[8]))
    ev = SubnetEvaluation({"supernet": str(path), "calib_images": 32, "val_images": 48, "threads": 1})
    G, top1 = measure_accuracy_dataset(ev, 6, seed=0)
    assert G.shape == (6, GenomeLayout(ev.cfg).length) and len(set(GenomeLayout(ev.cfg).keys(G))) == 6
    assert np.all((top1 >= 0) & (top1 <= 1)) and np.all(np.isclose(top1 * 48, np.round(top1 * 48)))
    again = ev.evaluate(G[:2])
    assert [r["top1"] for r in again] == list(top1[:2])   # deterministic measurement
    p = MLPPredictor(hidden=(16,), epochs=20).fit_genomes(ev.cfg, G, top1)
    assert np.isfinite(p.score_genomes(ev.cfg, G, top1)["kendall_tau"])

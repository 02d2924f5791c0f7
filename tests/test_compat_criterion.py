"""repscope.compat on planted data: cross-model retrieval, the compatibility criterion, update gain and transforms.

Known answers: new = old·Q (Q orthogonal) is the old model in another basis, so Procrustes must give back M(old,old)
exactly while the untransformed search is at chance; new = unrelated noise can never be compatible."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from repscope.compat import (
    BCTHead,
    CompatMap,
    ProcrustesMap,
    RidgeMap,
    chance_recall,
    compat_arrays,
    cross_retrieval,
    fit_eval_split,
    is_compatible,
    resolve_transforms,
    update_gain,
)
from repscope.errors import ConfigError, DataError
from repscope.probe.metrics import retrieval_metrics

SCORES = ["recall@1", "recall@5", "recall@10", "mAP", "nDCG@10"]


def planted(n: int = 800, d: int = 64, classes: int = 20, seed: int = 0,
            sep: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """Old features: a class centre (scale `sep`) plus isotropic unit noise per sample; labels."""
    rng = np.random.default_rng(seed)
    centres = sep * rng.standard_normal((classes, d))
    y = rng.integers(0, classes, n)
    return centres[y] + rng.standard_normal((n, d)), y


def ortho(d: int, seed: int = 1) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))
    return q


def row(table, query, gallery, transform, direction=None):
    t = table[(table["query"] == query) & (table["gallery"] == gallery) & (table["transform"] == transform)]
    if direction is not None:
        t = t[t["direction"] == direction]
    assert len(t) == 1, (query, gallery, transform)
    return t.iloc[0]


def test_cross_retrieval_equals_probe_retrieval_on_one_model():
    x, y = planted(n=500, d=16, classes=8)
    mine = cross_retrieval(x, x, y)
    ref = retrieval_metrics(x, y)
    for k in SCORES:
        assert mine[k] == pytest.approx(ref[k], abs=1e-6)
    eu = cross_retrieval(x, x, y, metric="euclidean")
    ref_eu = retrieval_metrics(x, y, metric="euclidean")
    assert eu["mAP"] == pytest.approx(ref_eu["mAP"], abs=1e-6)


def test_cross_retrieval_excludes_own_sample_and_ranks_other_model():
    # gallery = the queries' labels as one-hot: every other same-label item ties at distance 0, so recall@1 = 1 and
    # AP = 1 exactly; the own sample (also at distance 0) must not count
    y = np.repeat(np.arange(4), 5)
    q = np.eye(4)[y] + 0.01
    g = np.eye(4)[y]
    res = cross_retrieval(q, g, y)
    assert res["recall@1"] == 1.0 and res["mAP"] == pytest.approx(1.0)
    shuffled = cross_retrieval(q, g[::-1].copy(), y)  # gallery rows no longer the same samples: far from perfect
    assert shuffled["mAP"] < 0.7


def test_chance_recall_closed_form():
    assert chance_recall([0, 0, 1, 1]) == pytest.approx(1 / 3)  # one relevant among three candidates
    assert chance_recall([0, 0, 1, 1], k=2) == pytest.approx(1 - math.comb(2, 2) / math.comb(3, 2))
    y = np.repeat(np.arange(10), 50)
    assert chance_recall(y) == pytest.approx(49 / 499)


def test_criterion_and_update_gain_closed_forms():
    assert is_compatible(0.71, 0.70) and not is_compatible(0.70, 0.70)
    assert update_gain(0.8, 0.7, 0.9) == pytest.approx(0.5)
    assert update_gain(0.9, 0.7, 0.9) == pytest.approx(1.0)
    assert update_gain(0.6, 0.7, 0.9) == pytest.approx(-0.5)
    assert update_gain(0.1, 0.7, 0.1) == pytest.approx(-1.0)  # new model worse and incompatible: negative, not +1
    assert math.isnan(update_gain(0.8, 0.7, 0.7))


@pytest.mark.parametrize("shift", [0.0, 3.0])
def test_rotated_model_procrustes_recovers_old_exactly_and_none_is_at_chance(shift):
    old, y = planted()
    new = old @ ortho(old.shape[1]) + shift
    table, info = compat_arrays(old, new, y, transforms="none,procrustes", seed=0)
    oo = row(table, "old", "old", "-")
    pro = row(table, "procrustes(new)", "old", "procrustes")
    for k in SCORES:
        assert abs(pro[k] - oo[k]) <= 1e-6, k
    assert pro["compatible:mAP"] == 0.0  # equal is not better: the criterion is strict
    none = row(table, "new", "old", "none")
    chance = row(table, "random", "old", "-")["recall@1"]
    assert chance == pytest.approx(chance_recall(y[fit_eval_split(y, 0.5, 0)[1]]))
    assert abs(none["recall@1"] - chance) < 0.06, (none["recall@1"], chance)
    assert none["mAP"] < 0.1 < oo["mAP"] - 0.5
    assert none["compatible:recall@1"] == 0.0 and not none["update_gain:mAP"] > 0  # NaN when M(new,new) = M(old,old)
    assert info["n_fit"] + info["n_eval"] == len(y)


def test_procrustes_recovers_the_rotation():
    old, _ = planted(n=200, d=8)
    q = ortho(8)
    m = ProcrustesMap().fit(old, old @ q)
    torch.testing.assert_close(m.rotation_, torch.as_tensor(q.T), atol=1e-10, rtol=0)


def test_least_squares_inverts_an_invertible_linear_model_both_ways():
    old, y = planted(n=600, d=16, classes=8)
    a = np.random.default_rng(3).standard_normal((16, 16)) + 4 * np.eye(16)
    new = old @ a + 1.0
    n2o = RidgeMap("new→old", alpha=0).fit(old, new)
    torch.testing.assert_close(n2o.queries(new), torch.as_tensor(old), atol=1e-8, rtol=0)
    o2n = RidgeMap("old→new", alpha=0).fit(old, new)
    torch.testing.assert_close(o2n.gallery(old), torch.as_tensor(new), atol=1e-8, rtol=0)
    table, _ = compat_arrays(old, new, y, transforms="lstsq")
    oo = row(table, "old", "old", "-")
    assert row(table, "lstsq(new)", "old", "lstsq")["mAP"] == pytest.approx(oo["mAP"], abs=1e-6)


def test_unrelated_noise_is_never_compatible():
    old, y = planted(n=400, classes=10)
    new = np.random.default_rng(7).standard_normal(old.shape)
    table, _ = compat_arrays(old, new, y, transforms="none,procrustes,ridge,lstsq,bct", bct_epochs=100)
    cross = table[table["compatible:mAP"].notna()]
    assert set(cross["transform"]) == {"none", "procrustes", "ridge", "lstsq", "bct"}
    assert len(cross) == 7  # ridge and lstsq in both directions
    for s in ("recall@1", "mAP"):
        assert (cross[f"compatible:{s}"] == 0.0).all(), s
        assert (cross[f"update_gain:{s}"] <= 0).all(), s


def test_unrelated_but_better_new_model_needs_a_learned_map():
    # the new model separates the classes better, in a geometry unrelated to the old one: searching the old index
    # directly fails (gain < 0 with a positive denominator), a map fit on labelled pairs makes it compatible
    old, y = planted(n=800, seed=0, sep=0.4)
    rng = np.random.default_rng(11)
    new = rng.standard_normal((20, 64))[y] + rng.standard_normal(old.shape)
    table, _ = compat_arrays(old, new, y, transforms="none,ridge,bct", bct_epochs=200)
    oo, nn = row(table, "old", "old", "-"), row(table, "new", "new", "-")
    assert nn["mAP"] > oo["mAP"] + 0.05
    none = row(table, "new", "old", "none")
    assert none["compatible:mAP"] == 0.0 and none["update_gain:mAP"] < 0
    ridge = row(table, "ridge(new)", "old", "ridge", "new→old")
    assert ridge["compatible:mAP"] == 1.0 and 0 < ridge["update_gain:mAP"]
    assert row(table, "new", "ridge(old)", "ridge", "old→new")["compatible:mAP"] == 1.0
    bct = row(table, "bct(new)", "old", "bct")
    assert bct["compatible:mAP"] == 1.0 and bct["update_gain:mAP"] > 0


def test_bct_head_is_seeded_and_uses_the_old_classifier():
    old, y = planted(n=400, d=16, classes=5)
    new = np.random.default_rng(5).standard_normal((5, 16))[y] * 2 + np.random.default_rng(6).standard_normal(
        old.shape)
    a = BCTHead(epochs=50, seed=3, device="cpu").fit(old, new, y)
    b = BCTHead(epochs=50, seed=3, device="cpu").fit(old, new, y)
    torch.testing.assert_close(a.transform(new), b.transform(new))
    assert a.transform(new).shape == (400, 16) and a.transform(new).dtype == torch.float64
    # the influence loss pulls projected new features into the old classifier's regions
    acc = (a.old_classifier_.predict(torch.nn.functional.normalize(a.transform(new).float(), dim=1)) == y).mean()
    assert acc > 0.9
    assert BCTHead(epochs=50, lam=0.0).fit(old, new, y).influence_loss_ > a.influence_loss_


def test_bad_input_is_one_line():
    old, y = planted(n=100, d=8, classes=4)
    with pytest.raises(DataError, match="same samples"):
        compat_arrays(old, old[:90], y)
    with pytest.raises(ConfigError, match="unknown compat transform 'rotate'; choose one of"):
        resolve_transforms("none,rotate")
    with pytest.raises(ConfigError, match="fit_fraction"):
        compat_arrays(old, old, y, fit_fraction=1.5)
    with pytest.raises(DataError, match="equal widths"):
        CompatMap().fit(old, old[:, :4])
    table, info = compat_arrays(old, old[:, :4], y, transforms="none,procrustes")  # none skipped, Procrustes fits
    assert "none" in info["skipped"] and set(table["transform"]) == {"-", "procrustes"}
    assert resolve_transforms(["Orthogonal", "procrustes", "least-squares"]) == ["procrustes", "lstsq"]

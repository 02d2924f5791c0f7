"""repscope's disentanglement metrics against minimal independent re-derivations of the published formulas
(disentanglement_lib's MIG/DCI/SAP/modularity/explicitness, the QLAE paper's InfoMEC), written here from scratch."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import entropy as scipy_entropy

from repscope.disentangle import dci, explicitness, infomec, mig, modularity, mutual_info_matrix, sap

N, D, K = 600, 5, 3


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    f = np.stack([rng.integers(0, c, N) for c in (3, 5, 4)], axis=1)
    mix = rng.normal(size=(K, D)) * (rng.random((K, D)) < 0.5)  # sparse, partly shared mixing
    z = f @ mix + 0.7 * rng.normal(size=(N, D))
    z[:, 4] = rng.normal(size=N) * 0.01  # a nearly inactive latent
    return z, f


def _digitize(x: np.ndarray, bins: int = 20) -> np.ndarray:
    # disentanglement_lib's discretiser: np.digitize on the histogram edges without the last one
    return np.stack([np.digitize(x[:, i], np.histogram(x[:, i], bins)[1][:-1]) for i in range(x.shape[1])], axis=1)


def _mi(a: np.ndarray, b: np.ndarray) -> float:
    n = len(a)
    pairs, counts = np.unique(np.stack([a, b], axis=1), axis=0, return_counts=True)
    pa = {u: c / n for u, c in zip(*np.unique(a, return_counts=True), strict=True)}
    pb = {u: c / n for u, c in zip(*np.unique(b, return_counts=True), strict=True)}
    return float(sum(c / n * np.log((c / n) / (pa[x] * pb[y])) for (x, y), c in zip(pairs, counts, strict=True)))


def _mi_matrix(z: np.ndarray, f: np.ndarray) -> np.ndarray:
    zd = _digitize(z)
    return np.array([[_mi(zd[:, i], f[:, j]) for j in range(f.shape[1])] for i in range(z.shape[1])])


def _split(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    n_test = int(round(n / 3))
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def test_mi_matrix_matches_pairwise_and_sklearn(data: tuple) -> None:
    from sklearn.metrics import mutual_info_score

    z, f = data
    ours = mutual_info_matrix(z, f)
    assert ours == pytest.approx(_mi_matrix(z, f), abs=1e-10)
    zd = _digitize(z)
    sk = np.array([[mutual_info_score(f[:, j], zd[:, i]) for j in range(K)] for i in range(D)])
    assert ours == pytest.approx(sk, abs=1e-10)
    assert ours.max() > 0.1  # the planted structure is visible


def test_mig_matches_rederivation(data: tuple) -> None:
    z, f = data
    m = _mi_matrix(z, f)
    h = np.array([_mi(f[:, j], f[:, j]) for j in range(K)])
    top = np.sort(m, axis=0)[::-1]
    assert mig(z, f) == pytest.approx(np.mean((top[0] - top[1]) / h), abs=1e-6)


def test_modularity_matches_rederivation(data: tuple) -> None:
    z, f = data
    m = _mi_matrix(z, f)
    per = []
    for i in range(D):
        theta = m[i].max()
        per.append(0.0 if theta == 0 else 1 - (sum(m[i] ** 2) - theta**2) / (theta**2 * (K - 1)))
    assert modularity(z, f) == pytest.approx(np.mean(per), abs=1e-6)


def test_sap_r2_matches_rederivation(data: tuple) -> None:
    z, f = data
    s = np.array([[np.corrcoef(z[:, i], f[:, j])[0, 1] ** 2 for j in range(K)] for i in range(D)])
    top = np.sort(s, axis=0)[::-1]
    assert sap(z, f) == pytest.approx(np.mean(top[0] - top[1]), abs=1e-6)


def test_sap_classifier_matches_rederivation(data: tuple) -> None:
    from sklearn.svm import LinearSVC

    z, f = data
    tr, te = _split(N)
    s = np.zeros((D, K))
    for i in range(D):
        for j in range(K):
            clf = LinearSVC(C=0.01, class_weight="balanced", random_state=0).fit(z[tr, i : i + 1], f[tr, j])
            s[i, j] = np.mean(clf.predict(z[te, i : i + 1]) == f[te, j])
    top = np.sort(s, axis=0)[::-1]
    assert sap(z, f, mode="classifier") == pytest.approx(np.mean(top[0] - top[1]), abs=1e-6)


def _dci_from_r(r: np.ndarray) -> tuple[float, float]:
    d_code = 1 - scipy_entropy(r.T + 1e-11, base=r.shape[1])
    c_fac = 1 - scipy_entropy(r + 1e-11, base=r.shape[0])
    return float(np.sum(d_code * r.sum(1) / r.sum())), float(np.sum(c_fac * r.sum(0) / r.sum()))


def test_dci_exact_gbt_matches_rederivation(data: tuple) -> None:
    from sklearn.ensemble import GradientBoostingClassifier

    z, f = data
    z, f = z[:300], f[:300]
    tr, te = _split(300)
    r, acc = np.zeros((D, K)), []
    for j in range(K):
        m = GradientBoostingClassifier(random_state=0, n_estimators=100).fit(z[tr], f[tr, j])
        r[:, j] = np.abs(m.feature_importances_)
        acc.append(np.mean(m.predict(z[te]) == f[te, j]))
    dd, cc = _dci_from_r(r)
    for importance in ("gbt-sklearn", "gbt"):  # scikit-learn's estimator, then repscope's exact engine (default)
        ours = dci(z, f, importance=importance)
        assert ours["disentanglement"] == pytest.approx(dd, abs=1e-6)
        assert ours["completeness"] == pytest.approx(cc, abs=1e-6)
        assert ours["informativeness"] == pytest.approx(np.mean(acc), abs=1e-6)
    # the histogram GBT ranks the same latents and lands close to the exact estimator
    fast = dci(z, f, importance="gbt-hist")
    assert abs(fast["disentanglement"] - dd) < 0.1 and abs(fast["completeness"] - cc) < 0.1
    for j in range(K):
        assert np.argmax(fast["importance"][:, j]) == np.argmax(r[:, j])


def test_dci_from_importance_matches_scipy() -> None:
    from repscope.disentangle import dci_from_importance

    r = np.random.default_rng(3).random((6, 4)) ** 3
    d, c, _, _ = dci_from_importance(r)
    assert (d, c) == pytest.approx(_dci_from_r(r), abs=1e-10)


def test_dci_lasso_importance_follows_the_mixing() -> None:
    rng = np.random.default_rng(5)
    f = rng.integers(0, 3, size=(600, 2))
    z = np.stack([f[:, 1], rng.normal(size=600), f[:, 0]], axis=1) + 0.1 * rng.normal(size=(600, 3))
    out = dci(z, f, importance="lasso")
    assert np.argmax(out["importance"][:, 0]) == 2 and np.argmax(out["importance"][:, 1]) == 0
    assert out["disentanglement"] > 0.8 and out["informativeness"] > 0.9


def test_explicitness_matches_sklearn(data: tuple) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    z, f = data
    tr, te = _split(N)
    mu, sd = z[tr].mean(0), z[tr].std(0)
    aucs = []
    for j in range(K):
        m = LogisticRegression(C=1.0, max_iter=1000).fit((z[tr] - mu) / sd, f[tr, j])
        p = m.predict_proba((z[te] - mu) / sd)
        onehot = (f[te, j][:, None] == m.classes_[None, :]).astype(int)
        aucs.append(roc_auc_score(onehot, p, average="macro"))
    assert explicitness(z, f) == pytest.approx(np.mean(aucs), abs=1e-6)


def test_infomec_matches_qlae_formulas(data: tuple) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss

    z, f = data
    h = np.array([_mi(f[:, j], f[:, j]) for j in range(K)])
    nmi = (_mi_matrix(z, f) / h).T  # (k, d) as in the QLAE code
    ranges = z.max(0) - z.min(0)
    active = ranges > ranges.max() / 20
    assert active.tolist() == [True, True, True, True, False]
    p = nmi[:, active]
    na = active.sum()
    infom = (np.mean(p.max(0) / p.sum(0)) - 1 / K) / (1 - 1 / K)
    infoc = (np.mean(p.max(1) / p.sum(1)) - 1 / na) / (1 - 1 / na)
    tr, te = _split(N)
    mu, sd = z[tr].mean(0), z[tr].std(0)
    per = []
    for j in range(K):
        prior = np.bincount(f[tr, j]) / len(tr)
        ce0 = log_loss(f[te, j], np.tile(prior, (len(te), 1)), labels=np.arange(len(prior)))
        m = LogisticRegression(C=1.0, max_iter=1000).fit((z[tr] - mu) / sd, f[tr, j])
        ce = log_loss(f[te, j], m.predict_proba((z[te] - mu) / sd), labels=m.classes_)
        per.append((ce0 - ce) / ce0)
    ours = infomec(z, f)
    assert ours["nmi"].T == pytest.approx(nmi, abs=1e-10)
    assert ours["infom"] == pytest.approx(infom, abs=1e-6)
    assert ours["infoc"] == pytest.approx(infoc, abs=1e-6)
    assert ours["infoe"] == pytest.approx(np.mean(per), abs=1e-6)

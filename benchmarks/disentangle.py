"""Disentanglement metrics side by side with the straightforward reference loop, on 10k × 32 latents × 5 factors.

repscope: `disentanglement_scores(..., metrics="mig,dci,infomec")` — the MI matrix from one joint histogram per
factor (bincount over all latents), DCI importances from repscope's exact gradient boosting (the default
importance "gbt": scikit-learn's GradientBoostingClassifier reproduced with features sorted once per fit).
Reference (one process, same data, same seeded split): disentanglement_lib-style discretisation with scikit-learn's
`mutual_info_score` per (latent, factor) pair for MIG and InfoM/InfoC, one `GradientBoostingClassifier` per factor for
DCI, one `LogisticRegression` per factor for InfoE.
Prints each time, the ratio, and the largest score difference: every score (MI-based, InfoE and DCI D/C/I) must agree
to 1e-6.

Run: .venv/bin/python benchmarks/disentangle.py [--seeds 0,1,2]   (data seeds; the timing uses the first)
"""

from __future__ import annotations

import time

import numpy as np

N, D, CARDS = 10_000, 32, (2, 3, 4, 5, 6)
REPEATS = 3


def data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Five factors, five latents that each carry one factor (plus leakage and noise) and 27 mixtures/noise latents."""
    rng = np.random.default_rng(seed)
    f = np.stack([rng.integers(0, c, N) for c in CARDS], axis=1)
    fs = (f - f.mean(0)) / f.std(0)
    a = np.zeros((len(CARDS), D))
    a[np.arange(len(CARDS)), np.arange(len(CARDS))] = 1.0
    a[:, len(CARDS):] = rng.normal(size=(len(CARDS), D - len(CARDS))) * (rng.random((len(CARDS), D - len(CARDS)))
                                                                         < 0.2)
    z = fs @ a + 0.3 * rng.normal(size=(N, D))
    return z[:, rng.permutation(D)], f


def reference(z: np.ndarray, f: np.ndarray, seed: int = 0) -> dict[str, float]:
    from scipy.stats import entropy
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss, mutual_info_score

    k = f.shape[1]
    zd = np.stack([np.digitize(z[:, i], np.histogram(z[:, i], 20)[1][:-1]) for i in range(D)], axis=1)
    mi = np.array([[mutual_info_score(f[:, j], zd[:, i]) for j in range(k)] for i in range(D)])
    h = np.array([mutual_info_score(f[:, j], f[:, j]) for j in range(k)])
    top = np.sort(mi, axis=0)[::-1]
    out = {"mig": float(np.mean((top[0] - top[1]) / h))}
    perm = np.random.default_rng(seed).permutation(N)
    n_test = int(round(N / 3))
    tr, te = np.sort(perm[n_test:]), np.sort(perm[:n_test])
    r, acc = np.zeros((D, k)), []
    for j in range(k):
        m = GradientBoostingClassifier(random_state=seed).fit(z[tr], f[tr, j])
        r[:, j] = np.abs(m.feature_importances_)
        acc.append(np.mean(m.predict(z[te]) == f[te, j]))
    out["dci_disentanglement"] = float(np.sum((1 - entropy(r.T + 1e-11, base=k)) * r.sum(1) / r.sum()))
    out["dci_completeness"] = float(np.sum((1 - entropy(r + 1e-11, base=D)) * r.sum(0) / r.sum()))
    out["dci_informativeness"] = float(np.mean(acc))
    nmi = (mi / h).T
    ranges = z.max(0) - z.min(0)
    p = nmi[:, ranges > ranges.max() / 20]
    na = p.shape[1]
    out["infom"] = float((np.mean(p.max(0) / p.sum(0)) - 1 / k) / (1 - 1 / k))
    out["infoc"] = float((np.mean(p.max(1) / p.sum(1)) - 1 / na) / (1 - 1 / na))
    mu, sd = z[tr].mean(0), z[tr].std(0)
    per = []
    for j in range(k):
        prior = np.bincount(f[tr, j]) / len(tr)
        ce0 = log_loss(f[te, j], np.tile(prior, (len(te), 1)), labels=np.arange(len(prior)))
        lr = LogisticRegression(C=1.0, max_iter=1000).fit((z[tr] - mu) / sd, f[tr, j])
        per.append((ce0 - log_loss(f[te, j], lr.predict_proba((z[te] - mu) / sd), labels=lr.classes_)) / ce0)
    out["infoe"] = float(np.mean(per))
    return out


def compare(seed: int, repeats: int) -> float:
    """Time both sides on data(seed), print the scores and differences; return the largest |Δ| over all scores."""
    from threadpoolctl import threadpool_limits

    from repscope.disentangle import disentanglement_scores

    z, f = data(seed)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        ours = disentanglement_scores(z, f, metrics="mig,dci,infomec")
        best = min(best, time.perf_counter() - t)
    with threadpool_limits(1):  # the same thread budget as repscope's (which fits trees single-threaded)
        t = time.perf_counter()
        ref = reference(z, f)
        t_ref = time.perf_counter() - t
    print(f"data seed {seed}: MIG + DCI(GBT) + InfoMEC on {N} x {D} latents x {len(CARDS)} factors {CARDS}")
    print(f"repscope {best:.2f}s (best of {repeats}) | reference loop {t_ref:.2f}s | speed-up {t_ref / best:.1f}x")
    for name in ours:
        diff = abs(ours[name] - ref[name])
        print(f"  {name:22s} repscope {ours[name]:.9f}  reference {ref[name]:.9f}  |Δ| {diff:.2e}")
    mi_based = ("mig", "infom", "infoc", "infoe")
    dci_names = ("dci_disentanglement", "dci_completeness", "dci_informativeness")
    worst_mi = max(abs(ours[n] - ref[n]) for n in mi_based)
    worst_dci = max(abs(ours[n] - ref[n]) for n in dci_names)
    verdict = "met" if max(worst_mi, worst_dci) <= 1e-6 else "MISSED"
    print(f"max |Δ| MI-based + InfoE: {worst_mi:.2e}; DCI D/C/I: {worst_dci:.2e} (goal ≤ 1e-6: {verdict})")
    return max(worst_mi, worst_dci)


def main() -> None:
    import argparse

    from repscope.disentangle import disentanglement_scores

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0", help="comma-separated data seeds (default 0)")
    seeds = [int(s) for s in parser.parse_args().seeds.split(",")]
    z, f = data()
    disentanglement_scores(z[:500], f[:500], metrics="mig,dci")  # warm-up (imports, compiled kernels)
    worst = [compare(seed, REPEATS if i == 0 else 1) for i, seed in enumerate(seeds)]
    if len(seeds) > 1:
        print(f"largest |Δ| over data seeds {seeds}: {max(worst):.2e}")


if __name__ == "__main__":
    main()

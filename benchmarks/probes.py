"""Probes side by side with their anchors on 10k × 384 features, 10 classes (one process, best of `REPEATS`).

- LogisticProbe vs scikit-learn LogisticRegression(lbfgs) on standardized features, same C: time ratio and accuracy.
- KNNProbe vs faiss IndexFlatL2 / IndexFlatIP (exact search) and vs scikit-learn KNeighborsClassifier.

Run: .venv/bin/python benchmarks/probes.py
"""

from __future__ import annotations

import time

import numpy as np

REPEATS = 3


def _best(fn, repeats: int = REPEATS):
    out, best = None, float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return out, best


def data(n_train: int = 10_000, n_test: int = 2_000, d: int = 384, k: int = 10, seed: int = 0):
    """Gaussian class clusters in a random 384-d embedding (moderately separable, like sentence embeddings)."""
    from sklearn.datasets import make_classification

    X, y = make_classification(n_train + n_test, d, n_informative=64, n_redundant=64, n_classes=k,
                               n_clusters_per_class=1, class_sep=1.5, random_state=seed)
    X = X.astype(np.float32)
    return X[:n_train], X[n_train:], y[:n_train], y[n_train:]


def bench_logistic(Xtr, Xte, ytr, yte, C: float = 1.0) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from repscope.probe import LogisticProbe

    LogisticProbe(device="cpu").fit(Xtr[:100], ytr[:100])  # warm-up (torch.optim import)

    def ours():
        return LogisticProbe(C=C, device="cpu").fit(Xtr, ytr)

    def theirs():
        sc = StandardScaler().fit(Xtr)
        return sc, LogisticRegression(C=C, solver="lbfgs", max_iter=2000).fit(sc.transform(Xtr), ytr)

    p, t_ours = _best(ours)
    (sc, lr), t_sk = _best(theirs)
    a_ours, a_sk = p.score(Xte, yte), lr.score(sc.transform(Xte), yte)
    print(f"logistic  C={C}: repscope {t_ours:.3f}s ({p.n_iter_} it) acc {a_ours:.4f} | sklearn lbfgs {t_sk:.3f}s "
          f"({int(lr.n_iter_[0])} it) acc {a_sk:.4f} | speed-up {t_sk / t_ours:.1f}x, "
          f"|Δacc| {abs(a_ours - a_sk) * 100:.2f} pt")


def bench_knn(Xtr, Xte, ytr, yte, k: int = 10) -> None:
    import faiss
    import torch
    from sklearn.neighbors import KNeighborsClassifier

    from repscope.probe import KNNProbe, knn_search

    xtr, xte = torch.as_tensor(Xtr), torch.as_tensor(Xte)
    for metric in ("euclidean", "cosine"):
        (_, idx), t_ours = _best(lambda m=metric: knn_search(xte, xtr, k, m))
        if metric == "cosine":
            a, b = Xtr / np.linalg.norm(Xtr, axis=1, keepdims=True), Xte / np.linalg.norm(Xte, axis=1, keepdims=True)
        else:
            a, b = Xtr, Xte

        def faiss_search(a=a, b=b, metric=metric):
            index = faiss.IndexFlatIP(a.shape[1]) if metric == "cosine" else faiss.IndexFlatL2(a.shape[1])
            index.add(a)
            return index.search(b, k)

        (_, fidx), t_faiss = _best(faiss_search)
        agree = float((np.sort(idx.numpy(), 1) == np.sort(fidx, 1)).all(1).mean())
        print(f"knn search {metric}: repscope {t_ours:.3f}s | faiss IndexFlat {t_faiss:.3f}s | "
              f"ratio {t_ours / t_faiss:.2f}x faiss's time | same neighbour sets {agree:.4f}")
    probe, t_fit_pred = _best(lambda: KNNProbe(k, metric="euclidean", device="cpu").fit(Xtr, ytr).predict(Xte))
    sk, t_sk = _best(lambda: KNeighborsClassifier(k, metric="euclidean").fit(Xtr, ytr).predict(Xte), repeats=1)
    print(f"knn classify euclidean: repscope {t_fit_pred:.3f}s | sklearn KNeighborsClassifier {t_sk:.3f}s | "
          f"speed-up {t_sk / t_fit_pred:.1f}x | identical predictions {float((probe == sk).mean()):.4f}")


def main() -> None:
    import torch

    Xtr, Xte, ytr, yte = data()
    print(f"data: train {Xtr.shape}, test {Xte.shape}, 10 classes; torch threads {torch.get_num_threads()}")
    bench_logistic(Xtr, Xte, ytr, yte)
    bench_knn(Xtr, Xte, ytr, yte)


if __name__ == "__main__":
    main()

"""Logistic-probe sweep: 7 layers × 5 folds × 4 C values on 4,000 × 384 MiniLM features of SST-2 sentences.

repscope: per (layer, fold) one standardization and a warm-started C path through `fit_logistic` (`LogisticProbe`'s
solver, the product path). Anchor: the plain scikit-learn loop, `StandardScaler` + `LogisticRegression(lbfgs)` per
fit (140 fits). Same folds, same C grid, same objective; one process, CPU. Prints the time ratio and the largest
per-cell accuracy gap (goal from issue 15: ≥ 5× faster, every cell within ±0.5 pt). Features are built once with
repscope's own extraction (masked-mean, 7 hidden states) and cached in benchmarks/.cache.

Run: python benchmarks/sweep.py [--n 4000]   (needs ../shared/data/text/sst2 and the text extra)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

CS = (0.01, 0.1, 1.0, 10.0)
FOLDS = 5


def features(n: int) -> tuple[dict[str, np.ndarray], np.ndarray] | None:
    """{layer: (n, 384)} masked-mean MiniLM hidden states of the first n SST-2 train sentences, and labels."""
    from repscope.paths import shared_data

    cache = Path(__file__).parent / ".cache" / f"minilm_sst2_layers_{n}.npz"
    if cache.exists():
        with np.load(cache, allow_pickle=False) as z:
            return {k: z[k] for k in z.files if k != "__labels__"}, z["__labels__"]
    path = shared_data("text", "sst2", "train.tsv")
    if path is None:
        return None
    from repscope.extract import extract
    from repscope.sources.datasets import load_tsv_text
    from repscope.sources.load import load_model

    data = load_tsv_text(path, limit=n)
    print(f"(encoding {n} SST-2 sentences with MiniLM once; cached in {cache.parent})", flush=True)
    with tempfile.TemporaryDirectory() as d:
        store = extract(load_model("minilm", device="cpu"), data, Path(d) / "s", pooling="masked-mean",
                        progress=False)
        layers = {name: store.get(name).numpy() for name in store.layers}
        labels = store.labels("label")
    cache.parent.mkdir(exist_ok=True)
    np.savez(cache, __labels__=labels, **layers)
    return layers, labels


def ours(layers: dict[str, np.ndarray], y: np.ndarray, folds: list) -> dict[tuple[str, int, float], float]:
    """Accuracy per (layer, fold, C): one standardization per fold, C path warm-started."""
    import torch

    from repscope.kernels.estimator import Standardizer
    from repscope.kernels.logistic import fit_logistic

    classes, codes = np.unique(y, return_inverse=True)
    out = {}
    for name, x_np in layers.items():
        x = torch.as_tensor(x_np)
        for f, (tr, te) in enumerate(folds):
            sc = Standardizer().fit(x[tr])
            xtr, xte = sc.transform(x[tr]), sc.transform(x[te])
            ytr = torch.as_tensor(codes[tr])
            init = None
            for c in CS:
                w, b, _ = fit_logistic(xtr, ytr, len(classes), c, init=init)
                init = (w, b)
                z = (xte @ w + b).numpy()
                pred = (z[:, 0] > 0).astype(int) if z.shape[1] == 1 else z.argmax(1)
                out[(name, f, c)] = float((pred == codes[te]).mean())
    return out


def theirs(layers: dict[str, np.ndarray], y: np.ndarray, folds: list) -> dict[tuple[str, int, float], float]:
    """Accuracy per (layer, fold, C): StandardScaler + LogisticRegression(lbfgs) for every fit."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    out = {}
    for name, x in layers.items():
        for f, (tr, te) in enumerate(folds):
            for c in CS:
                sc = StandardScaler().fit(x[tr])
                m = LogisticRegression(C=c, solver="lbfgs", max_iter=2000).fit(sc.transform(x[tr]), y[tr])
                out[(name, f, c)] = float(m.score(sc.transform(x[te]), y[te]))
    return out


def main() -> None:
    """Run both sweeps once and print the ratio and the accuracy gaps."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4000)
    args = ap.parse_args()
    got = features(args.n)
    if got is None:
        print("sweep: skipped (needs ../shared/data/text/sst2; set REPSCOPE_SHARED)")
        return
    layers, y = got
    import torch
    from sklearn.model_selection import StratifiedKFold

    folds = list(StratifiedKFold(FOLDS, shuffle=True, random_state=0).split(np.zeros(len(y)), y))
    times, res = {}, {}
    for label, fn in (("per-fit", ours), ("sklearn", theirs)):
        t = time.perf_counter()
        res[label] = fn(layers, y, folds)
        times[label] = time.perf_counter() - t
    width = next(iter(layers.values())).shape[1]
    print(f"logistic sweep: {len(layers)} layers × {FOLDS} folds × {len(CS)} C on {len(y)} × {width} MiniLM "
          f"features (SST-2), CPU, torch threads {torch.get_num_threads()}")
    ref = res["sklearn"]
    print(f"sklearn loop (140 fits)               {times['sklearn']:8.2f} s")
    for label in ("per-fit",):
        gap = max(abs(res[label][k] - ref[k]) for k in ref)
        print(f"repscope {label:8s} {times[label]:8.2f} s   speed-up {times['sklearn'] / times[label]:6.2f}× "
              f"(goal ≥ 5×)   largest per-cell accuracy gap {100 * gap:.2f} pt (goal ≤ 0.5)")
    for c in CS:
        means = {label: np.mean([v for k, v in r.items() if k[2] == c]) for label, r in res.items()}
        print(f"  C={c:<6g} mean accuracy " + "  ".join(f"{k} {v:.4f}" for k, v in means.items()))


if __name__ == "__main__":
    main()

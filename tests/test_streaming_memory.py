"""Streaming analyses: equal to the in-memory versions to 1e-6, and peak RSS flat while the store grows 10×.

Measured in fresh subprocesses on 20k- and 200k-row stores of the same width (built chunk by chunk from planted
data through an `ArrayDataset` and the extraction loop, identity model): linear CKA (streaming), spectrum,
participation ratio, anisotropy, and the ridge, naive Bayes and LDA probes (fit on a train range, scored on a test
range). Goal from issue 15: peak RSS grows ≤ 20% while the data grows 10×.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

WIDTH, CLASSES = 96, 5


def planted(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features with a decaying spectrum and class means, labels, and a linear continuous target."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, CLASSES, n)
    basis = np.random.default_rng(123).normal(size=(WIDTH, WIDTH)) * (0.9 ** np.arange(WIDTH))[:, None]
    centers = np.random.default_rng(7).normal(size=(CLASSES, WIDTH)) * 0.8
    x = (rng.normal(size=(n, WIDTH)) @ basis + centers[y] + 0.5).astype(np.float32)
    target = x[:, :8].astype(np.float64) @ np.arange(1, 9) + rng.normal(size=n)
    return x, y, target


def build_store(path, n: int, chunk: int = 2048):
    """A store of n planted rows: an ArrayDataset through the extraction loop (identity model), chunk by chunk."""
    from repscope.extract import extract
    from repscope.sources.datasets import ArrayDataset
    from repscope.sources.models import TorchModuleAdapter

    x, y, target = planted(n)
    model = TorchModuleAdapter(torch.nn.Sequential(torch.nn.Identity()), device="cpu", name="identity")
    data = ArrayDataset(x, {"label": y, "target": target}, name=f"planted{n}")
    return extract(model, data, path, layers=["0"], batch_size=chunk, chunk_rows=chunk, progress=False)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return build_store(tmp_path_factory.mktemp("stream") / "s", 3000, chunk=256)


def test_streaming_equals_in_memory(small):
    from repscope.distributed import memory
    from repscope.geometry.anisotropy import mean_cosine
    from repscope.geometry.intrinsic import participation_ratio
    from repscope.geometry.spectrum import covariance_eigenvalues
    from repscope.probe.naive_bayes import NaiveBayesProbe
    from repscope.probe.ridge import RidgeProbe

    x = small.get("0", dtype=torch.float32)
    lam = covariance_eigenvalues(x, device="cpu")
    got = memory.streaming_spectrum(small, "0")
    assert torch.allclose(got, lam, rtol=1e-6, atol=1e-9 * float(lam[0]))
    assert memory.streaming_participation_ratio(small, "0") == pytest.approx(participation_ratio(x, "cpu"), rel=1e-6)
    assert memory.streaming_mean_cosine(small, "0") == pytest.approx(mean_cosine(x, device="cpu"), abs=1e-9)

    train, test = np.arange(0, 2200), np.arange(2200, 3000)
    xtr, xte = x[:2200], x[2200:]
    target, labels = small.labels("target").astype(np.float64), small.labels("label")
    ridge = RidgeProbe(alpha=3.0, device="cpu").fit(xtr, target[train])
    sr = memory.streaming_ridge(small, "0", target[train], train, alpha=3.0)
    std = xtr.double().std(0, unbiased=False).numpy()  # RidgeProbe's coef_ is on the z-scored features
    np.testing.assert_allclose(sr.coef_ * std, ridge.coef_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(sr.predict(xte), ridge.predict(xte), rtol=1e-6, atol=1e-6)
    assert memory.streaming_score(sr, small, "0", target[test], test) == pytest.approx(
        ridge.score(xte, target[test]), abs=1e-6)
    for cov in ("diag", "shared"):
        ref = NaiveBayesProbe(covariance=cov, device="cpu").fit(xtr, labels[train])
        est = memory.streaming_gaussian_probe(small, "0", labels[train], train, covariance=cov)
        np.testing.assert_allclose(est.theta_, ref.theta_, rtol=1e-6, atol=1e-9)
        jl_ref, jl = ref.predict_log_proba(xte), est.predict_log_proba(xte)
        np.testing.assert_allclose(jl, jl_ref, rtol=1e-6, atol=1e-6)
        acc = memory.streaming_score(est, small, "0", labels[test], test)
        assert acc == pytest.approx(ref.score(xte, labels[test]), abs=1e-6)
        assert acc > 1.5 / CLASSES  # the planted class means are found


CHILD = textwrap.dedent("""
    import json, sys
    def hwm_kb():  # this process's own high-water mark (ru_maxrss would carry the parent's over fork + exec)
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    import numpy as np
    from repscope.distributed import memory
    from repscope.similarity.streaming import streaming_cka_matrix
    from repscope.store import RepStore
    s = RepStore.open(sys.argv[1])
    base = hwm_kb()
    n = s.n_rows
    train, test = np.arange(0, int(n * 0.8)), np.arange(int(n * 0.8), n)
    y, t = s.labels("label"), s.labels("target").astype(np.float64)
    out = {"cka": float(streaming_cka_matrix(s, None, ["0"], ["0"], device="cpu").iloc[0, 0]),
           "pr": memory.streaming_participation_ratio(s, "0"),
           "top_eig": float(memory.streaming_spectrum(s, "0")[0]),
           "anisotropy": memory.streaming_mean_cosine(s, "0")}
    r = memory.streaming_ridge(s, "0", t[train], train, alpha=1.0)
    out["ridge_r2"] = memory.streaming_score(r, s, "0", t[test], test)
    for cov in ("diag", "shared"):
        est = memory.streaming_gaussian_probe(s, "0", y[train], train, covariance=cov)
        out[cov + "_acc"] = memory.streaming_score(est, s, "0", y[test], test)
    out["peak_kb"] = hwm_kb()
    out["import_kb"] = base
    print(json.dumps(out))
""")


def peak(path) -> dict:
    r = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads VmHWM from /proc/self/status")
def test_peak_rss_stays_flat_from_20k_to_200k_rows(tmp_path):
    small_s = build_store(tmp_path / "n20k", 20_000)
    big_s = build_store(tmp_path / "n200k", 200_000)
    a, b = peak(small_s.root), peak(big_s.root)
    layer_mb = 200_000 * WIDTH * 8 / 2**20  # the big layer as float64, what an in-memory fit would hold at least
    grow = b["peak_kb"] / a["peak_kb"]
    print(f"\npeak RSS 20k rows: {a['peak_kb'] / 1024:.0f} MiB, 200k rows: {b['peak_kb'] / 1024:.0f} MiB "
          f"(×{grow:.3f}; after imports {a['import_kb'] / 1024:.0f} MiB); the 200k layer is {layer_mb:.0f} MiB "
          "as float64")
    assert grow <= 1.20
    assert b["peak_kb"] - a["peak_kb"] < layer_mb * 1024 / 4  # far below holding the layer in memory
    for key in ("pr", "anisotropy", "diag_acc", "shared_acc", "ridge_r2"):  # same distribution, 10× the rows
        assert b[key] == pytest.approx(a[key], rel=0.1, abs=0.05), key

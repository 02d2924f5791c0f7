"""Streaming analyses: equal to the in-memory versions to 1e-6, and peak RSS flat while the store grows 10×.

The real entry points (`layer_sweep` with ridge / naive Bayes / LDA probes, `compare_stores` with linear CKA, and
`geometry_profile` with the spectrum, participation ratio and anisotropy) run with a small `max_memory`, so each
layer is over budget and streams from disk; with a large budget they load the layer as before. Measured in fresh
subprocesses on 20k- and 200k-row stores of the same width (built chunk by chunk from planted data through an
`ArrayDataset` and the extraction loop of a fixed two-layer model). Goal from issue 15: peak RSS grows ≤ 20% while
the data grows 10×, and the streamed numbers equal the in-memory ones to 1e-6.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

WIDTH, HIDDEN, CLASSES = 96, 32, 5
TINY = "1MB"  # under every layer's working copies below, over the streaming accumulators


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
    """A store of n planted rows: an ArrayDataset through the extraction loop, chunk by chunk. Layer '0' is the data
    itself (identity), layer '2' a fixed tanh(Wx) of width HIDDEN, so CKA between them is not trivially 1."""
    from repscope.extract import extract
    from repscope.sources.datasets import ArrayDataset
    from repscope.sources.models import TorchModuleAdapter

    x, y, target = planted(n)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Identity(), torch.nn.Linear(WIDTH, HIDDEN), torch.nn.Tanh())
    model = TorchModuleAdapter(net, device="cpu", name="planted-net")
    data = ArrayDataset(x, {"label": y, "target": target}, name=f"planted{n}")
    return extract(model, data, path, layers=["0", "2"], batch_size=chunk, chunk_rows=chunk, progress=False)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return build_store(tmp_path_factory.mktemp("stream") / "s", 3000, chunk=256)


def _chunks(store, y, rows):
    """Re-readable (X, y) blocks of `rows`, one store chunk at a time (what `layer_sweep` streams)."""
    from repscope.kernels.streaming import blocks

    return lambda: ((x, y[pos]) for pos, x in blocks(store, "0", rows))


def test_streaming_equals_in_memory(small):
    from repscope.geometry.anisotropy import mean_cosine
    from repscope.geometry.intrinsic import participation_ratio
    from repscope.geometry.spectrum import covariance_eigenvalues
    from repscope.kernels import streaming as memory
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
    sr = RidgeProbe(alpha=3.0, device="cpu").fit_blocks(_chunks(small, target[train], train))
    np.testing.assert_allclose(sr.coef_, ridge.coef_, rtol=1e-6, atol=1e-9)  # both on the z-scored features
    assert sr.intercept_ == pytest.approx(float(ridge.intercept_), rel=1e-9)
    np.testing.assert_allclose(sr.predict(xte), ridge.predict(xte), rtol=1e-6, atol=1e-6)
    assert memory.streaming_score(sr, small, "0", target[test], test) == pytest.approx(
        ridge.score(xte, target[test]), abs=1e-6)
    inc = RidgeProbe(alpha=3.0, device="cpu")  # partial_fit over the same chunks: the same statistics, same model
    for xb, yb in _chunks(small, target[train], train)():
        inc.partial_fit(xb, yb)
    np.testing.assert_array_equal(inc.predict(xte), sr.predict(xte))
    for cov in ("diag", "shared"):
        ref = NaiveBayesProbe(covariance=cov, device="cpu").fit(xtr, labels[train])
        est = NaiveBayesProbe(covariance=cov, device="cpu").fit_blocks(_chunks(small, labels[train], train),
                                                                       classes=np.unique(labels))
        np.testing.assert_allclose(est.theta_, ref.theta_, rtol=1e-6, atol=1e-9)
        inc = NaiveBayesProbe(covariance=cov, device="cpu")
        for xb, yb in _chunks(small, labels[train], train)():
            inc.partial_fit(xb, yb, classes=np.unique(labels))
        np.testing.assert_array_equal(inc.predict_log_proba(xte), est.predict_log_proba(xte))
        jl_ref, jl = ref.predict_log_proba(xte), est.predict_log_proba(xte)
        np.testing.assert_allclose(jl, jl_ref, rtol=1e-6, atol=1e-6)
        acc = memory.streaming_score(est, small, "0", labels[test], test)
        assert acc == pytest.approx(ref.score(xte, labels[test]), abs=1e-6)
        assert acc > 1.5 / CLASSES  # the planted class means are found


    ridge = RidgeProbe(alphas=[0.1, 1.0, 10.0, 100.0, 1000.0], device="cpu").fit(xtr, target[train])  # LOO α
    sr = RidgeProbe(alphas=[0.1, 1.0, 10.0, 100.0, 1000.0], device="cpu").fit_blocks(
        _chunks(small, target[train], train))
    assert sr.alpha_ == ridge.alpha_
    for a, err in ridge.loo_errors_.items():
        assert sr.loo_errors_[a] == pytest.approx(err, rel=1e-6)
    np.testing.assert_allclose(sr.predict(xte), ridge.predict(xte), rtol=1e-6, atol=1e-6)
    from repscope.geometry.anisotropy import cosine_contributions

    st = memory.layer_stats(small, "0", test)
    np.testing.assert_allclose(st.eigenvalues(), covariance_eigenvalues(xte, device="cpu"), rtol=1e-6,
                               atol=1e-9 * float(lam[0]))
    np.testing.assert_allclose(st.cosine_contributions(), cosine_contributions(xte, device="cpu"), atol=1e-12)


def _values(table):
    return table.drop(columns=[c for c in table.columns if c in ("seconds", "created")])


@pytest.mark.parametrize("cv", [None, 3])
def test_probe_sweep_streams_over_budget(small, cv, capsys):
    from repscope.probe.protocols import as_table, layer_sweep

    for target, probes in (("target", ["ridge"]), ("label", ["nb", "lda"])):
        ref = as_table(layer_sweep(small, probes, target, cv=cv, device="cpu", max_memory="64GB"))
        assert capsys.readouterr().err == ""  # fits: loaded whole, no warning
        default = as_table(layer_sweep(small, probes, target, cv=cv, device="cpu"))
        assert _values(default).equals(_values(ref))  # the default budget loads this store as before
        assert not {"streaming", "rows_used", "subsampled"} & set(ref.columns)
        got = as_table(layer_sweep(small, probes, target, cv=cv, device="cpu", max_memory=TINY))
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 2 and all(line.startswith("warning: probe: layer") for line in err)  # one per layer
        assert got["streaming"].all() and list(got["metric"]) == list(ref["metric"])
        for col in ("value", "ci_low", "ci_high"):
            np.testing.assert_allclose(got[col], ref[col], rtol=1e-6, atol=1e-9)
        assert list(got["n_test"]) == list(ref["n_test"])
        main = ref[ref["metric"] == ("r2" if target == "target" else "accuracy")]
        assert main[main["layer"] == "0"]["value"].min() > (0.9 if target == "target" else 1.5 / CLASSES)


@pytest.mark.parametrize("max_rows", [None, 2000])
def test_compare_and_geometry_stream_over_budget(small, max_rows, capsys):
    from repscope.geometry.profile import geometry_profile
    from repscope.similarity.matrix import compare_stores

    names = ["linear_cka", "debiased_cka"]
    ref = compare_stores(small, None, names, max_rows=max_rows, device="cpu", max_memory="64GB").frame()
    got = compare_stores(small, None, names, max_rows=max_rows, device="cpu", max_memory=TINY).frame()
    assert capsys.readouterr().err.startswith("warning: compare:")
    assert all(p.get("streaming") for p in got["params"]) and not any("streaming" in p for p in ref["params"])
    assert [p["n"] for p in got["params"]] == [p["n"] for p in ref["params"]] == [max_rows or 3000] * 8
    np.testing.assert_allclose(got["value"], ref["value"], rtol=1e-6, atol=1e-9)
    off = got[(got["layer"] == "0") & (got["layer_b"] == "2") & (got["metric"] == "linear_cka")]["value"].iloc[0]
    assert 0.2 < off < 0.99  # a real comparison, not a layer with itself

    ms = ["pca", "participation_ratio", "anisotropy", "rogue"]
    gref = geometry_profile(small, ms, max_rows=max_rows, device="cpu", max_memory="64GB")
    ggot = geometry_profile(small, ms, max_rows=max_rows, device="cpu", max_memory=TINY)
    fr, fg = gref.frame(), ggot.frame()
    assert list(fg["metric"]) == list(fr["metric"]) and all(p["streaming"] for p in fg["params"])
    np.testing.assert_allclose(fg["value"], fr["value"], rtol=1e-6, atol=1e-9)
    sr, sg = gref.artifacts[0].payload, ggot.artifacts[0].payload
    assert sr["n"] == sg["n"] == (max_rows or 3000) and "rows_used" not in sg
    for layer in ("0", "2"):
        np.testing.assert_allclose(sg["layers"][layer], sr["layers"][layer], rtol=1e-6, atol=1e-9)


def test_over_budget_subsamples_the_rest_and_records_rows(small, capsys):
    from repscope.budget import parse_size, rows_that_fit
    from repscope.geometry.intrinsic import twonn_dimension
    from repscope.geometry.profile import GEOMETRY_COPIES, geometry_profile
    from repscope.probe.protocols import PROBE_COPIES, as_table, layer_sweep
    from repscope.selection import subset_rows
    from repscope.similarity.matrix import COMPARE_COPIES, compare_stores, similarity_matrices

    tiny = parse_size(TINY)
    g = geometry_profile(small, ["twonn", "anisotropy"], max_rows=None, device="cpu", max_memory=TINY).frame()
    assert "subsampling" in capsys.readouterr().err
    for layer, width in (("0", WIDTH), ("2", HIDDEN)):
        row = g[(g["layer"] == layer) & (g["metric"] == "twonn_id")].iloc[0]
        used = rows_that_fit(width, tiny, GEOMETRY_COPIES)
        assert used < 3000 and row["params"]["n"] == used
        recorded = {k: row["params"].get(k) for k in ("rows_used", "rows_total", "subsampled")}
        assert recorded == {"rows_used": used, "rows_total": 3000, "subsampled": True}
        keep = subset_rows(3000, used, 0)
        ref = twonn_dimension(small.get(layer, keep, dtype=torch.float32), device="cpu")
        assert row["value"] == pytest.approx(ref, rel=1e-9)
        aniso = g[(g["layer"] == layer) & (g["metric"] == "anisotropy")].iloc[0]["params"]
        assert aniso["streaming"] and aniso["n"] == 3000 and "rows_used" not in aniso

    c = compare_stores(small, None, ["procrustes", "linear_cka"], max_rows=None, device="cpu",
                       max_memory=TINY).frame()
    proc = c[c["metric"] == "procrustes"]
    used = rows_that_fit(WIDTH + HIDDEN, tiny, COMPARE_COPIES)
    assert all(p["rows_used"] == used and p["rows_total"] == 3000 and p["subsampled"] for p in proc["params"])
    keep = subset_rows(3000, used, 0)
    xs = {k: small.get(k, keep, dtype=torch.float32) for k in ("0", "2")}
    ref = similarity_matrices(xs, None, ["procrustes"], device="cpu")["procrustes"]
    got = proc.set_index(["layer", "layer_b"])["value"]
    for a in ("0", "2"):
        for b in ("0", "2"):
            assert got[(a, b)] == pytest.approx(ref.loc[a, b], rel=1e-9, abs=1e-12)
    assert all(p.get("streaming") for p in c[c["metric"] == "linear_cka"]["params"])
    assert "subsampling" in capsys.readouterr().err

    t = as_table(layer_sweep(small, ["logistic", "nb"], "label", layers=["0"], device="cpu", max_memory=TINY))
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "streaming nb" in err[0] and "for logistic" in err[0]
    lr, nb = t[t["probe"] == "logistic"].iloc[0], t[t["probe"] == "nb"].iloc[0]
    used = rows_that_fit(WIDTH, tiny, PROBE_COPIES)
    assert (lr["rows_used"], lr["rows_total"], lr["subsampled"]) == (used, 3000, True)
    assert nb["streaming"] and nb["n_test"] == 750 and lr["n_test"] < 750
    assert 0 <= lr["value"] <= 1


CHILD = textwrap.dedent("""
    import json, sys
    def hwm_kb():  # this process's own high-water mark (ru_maxrss would carry the parent's over fork + exec)
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    from repscope.geometry.profile import geometry_profile
    from repscope.probe.protocols import as_table, layer_sweep
    from repscope.similarity.matrix import compare_stores
    from repscope.store import RepStore
    s = RepStore.open(sys.argv[1])
    base = hwm_kb()

    def run(budget):
        out, flags = {}, []
        for target, probes in (("target", ["ridge"]), ("label", ["nb", "lda"])):
            t = as_table(layer_sweep(s, probes, target, layers=["0"], device="cpu", max_memory=budget))
            for r in t.to_dict("records"):
                out[r["probe"] + "_" + r["metric"]] = r["value"]
                flags.append(bool(r.get("streaming") is True))
        c = compare_stores(s, None, "linear_cka", max_rows=None, device="cpu", max_memory=budget).frame()
        c = c[(c["layer"] == "0") & (c["layer_b"] == "2")]
        out["cka"] = float(c["value"].iloc[0])
        flags.append(bool(c["params"].iloc[0].get("streaming")))
        g = geometry_profile(s, ["participation_ratio", "anisotropy"], max_rows=None, device="cpu",
                             max_memory=budget)
        for r in g.frame().to_dict("records"):
            out["geometry_" + r["layer"] + "_" + r["metric"]] = r["value"]
            flags.append(bool(r["params"].get("streaming")))
        spec = g.artifacts[0].payload["layers"]
        out["spectrum"] = spec["0"] + spec["2"]
        return out, flags

    streamed, flags = run(sys.argv[2])
    res = {"streamed": streamed, "flags": flags, "peak_kb": hwm_kb(), "import_kb": base}
    if sys.argv[3] == "1":  # the same calls with the layers loaded whole, after the peak was taken
        res["in_memory"], res["flags_in_memory"] = run("64GB")
    print(json.dumps(res))
""")


def peak(path, budget: str, in_memory: bool = False) -> dict:
    r = subprocess.run([sys.executable, "-c", CHILD, str(path), budget, "1" if in_memory else "0"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def stores_20k_200k(tmp_path_factory):
    root = tmp_path_factory.mktemp("rss")
    return build_store(root / "n20k", 20_000), build_store(root / "n200k", 200_000)


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads VmHWM from /proc/self/status")
def test_peak_rss_stays_flat_from_20k_to_200k_rows(stores_20k_200k):
    small_s, big_s = stores_20k_200k
    budget = "8MB"  # every layer of both stores is over it: 20k rows × 32 × 4 B × 6 copies = 15 MB
    a, b = peak(small_s.root, budget, in_memory=True), peak(big_s.root, budget)
    assert all(a["flags"]) and all(b["flags"]) and not any(a["flags_in_memory"])  # streamed vs loaded whole
    layer_mb = 200_000 * WIDTH * 8 / 2**20  # the big layer as float64, what an in-memory fit would hold at least
    grow = b["peak_kb"] / a["peak_kb"]
    print(f"\npeak RSS through the entry points, max_memory={budget}: 20k rows {a['peak_kb'] / 1024:.0f} MiB, "
          f"200k rows {b['peak_kb'] / 1024:.0f} MiB (×{grow:.3f}; after imports {a['import_kb'] / 1024:.0f} / "
          f"{b['import_kb'] / 1024:.0f} MiB); the 200k layer '0' is {layer_mb:.0f} MiB as float64")
    assert grow <= 1.20
    assert b["peak_kb"] - a["peak_kb"] < layer_mb * 1024 / 4  # far below holding the layer in memory
    got, ref = a["streamed"], a["in_memory"]
    assert got.keys() == ref.keys()
    for key in got:  # streamed == loaded whole, to 1e-6
        np.testing.assert_allclose(got[key], ref[key], rtol=1e-6, atol=1e-9, err_msg=key)
    for key in ("ridge_r2", "nb_accuracy", "lda_accuracy", "cka", "geometry_0_participation_ratio",
                "geometry_0_anisotropy"):  # same distribution, 10× the rows
        assert b["streamed"][key] == pytest.approx(got[key], rel=0.1, abs=0.05), key

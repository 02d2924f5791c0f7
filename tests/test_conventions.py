"""Documented metric conventions (issue 11): every variant pinned to its reference formula, written here in numpy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import sqrtm

from repscope.errors import ConfigError
from repscope.geometry.intrinsic import twonn_dimension
from repscope.similarity import cca, neighbors, shape


def _pair(n=120, dx=6, dy=9, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dx)) * np.linspace(3, 0.5, dx) + 2.0
    y = np.tanh(x @ rng.normal(size=(dx, dy))) + 0.5 * rng.normal(size=(n, dy))
    return x, y


def _pwcca_morcos(x, y):
    """Morcos et al. 2018: canonical variates hᵢ = Xᶜ Σxx^(−½) uᵢ, weights Σⱼ |⟨hᵢ, xⱼᶜ⟩|."""
    xc, yc = x - x.mean(0), y - y.mean(0)
    sxx, syy, sxy = xc.T @ xc, yc.T @ yc, xc.T @ yc
    ixx, iyy = (np.linalg.inv(sqrtm(m).real) for m in (sxx, syy))
    u, rho, _ = np.linalg.svd(ixx @ sxy @ iyy, full_matrices=False)
    h = xc @ ixx @ u
    h /= np.linalg.norm(h, axis=0)
    w = np.abs(h.T @ xc).sum(1)
    return float((w * rho).sum() / w.sum())


def _pwcca_svcca_code(x, y):
    """google/svcca's compute_pwcca on centred activations (neurons × datapoints, as that code takes them):
    directions Uᵀ Xᶜ with U from svd(Σxx^(−½) Σxy Σyy^(−½)) (no Σxx^(−½) on the directions), QR, |Pᵀ x|."""
    a1 = (x - x.mean(0)).T
    a2 = (y - y.mean(0)).T
    nx = a1.shape[0]
    cov = np.cov(a1, a2)
    sxx, sxy, syy = cov[:nx, :nx], cov[:nx, nx:], cov[nx:, nx:]

    def inv_sqrt(m):
        w, v = np.linalg.eigh(np.linalg.pinv(m))
        return v @ np.diag(np.sqrt(np.clip(w, 0, None))) @ v.T

    u, s, _ = np.linalg.svd(inv_sqrt(sxx) @ sxy @ inv_sqrt(syy))
    p, _ = np.linalg.qr((u.T @ a1).T)
    w = np.abs(p.T @ a1.T).sum(1)
    return float((w / w.sum() * s[: len(w)]).sum())


def test_pwcca_variants_match_their_reference_formulas():
    x, y = _pair()
    morcos, code = _pwcca_morcos(x, y), _pwcca_svcca_code(x, y)
    assert cca.pwcca(x, y, "cpu") == pytest.approx(morcos, abs=1e-9)  # the default is Morcos et al.
    assert cca.pwcca(x, y, "cpu", variant="morcos") == pytest.approx(morcos, abs=1e-9)
    assert cca.pwcca(x, y, "cpu", variant="svcca_code") == pytest.approx(code, abs=1e-9)
    assert abs(morcos - code) > 1e-3  # the two conventions really differ on this pair
    with pytest.raises(ConfigError, match="svcca_code"):
        cca.pwcca(x, y, "cpu", variant="svcca")


def _angular(px, py):
    cos = np.linalg.svd(px.T @ py, compute_uv=False).sum() / (np.linalg.norm(px) * np.linalg.norm(py))
    return float(np.arccos(min(1.0, cos)))


def _phi_covariance(a, alpha):
    ac = a - a.mean(0)
    c = ac.T @ ac / len(a)
    reg = alpha * np.trace(c) / a.shape[1] * np.eye(a.shape[1]) + (1 - alpha) * c
    return ac @ np.linalg.inv(sqrtm(reg).real)


def _phi_netrep(a, alpha):
    """netrep's partial whitening: Xᶜ V diag(α + (1−α) λ^(−½)) Vᵀ, λ the eigenvalues of XᶜᵀXᶜ (floored at 1e-7)."""
    ac = a - a.mean(0)
    lam, v = np.linalg.eigh(ac.T @ ac)
    d = alpha + (1 - alpha) * np.maximum(lam, 1e-7) ** -0.5
    return ac @ (v * d) @ v.T


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_angular_shape_interpolations_match_their_references(alpha):
    x, y = _pair(n=80)
    cov = _angular(_phi_covariance(x, alpha), _phi_covariance(y, alpha))
    net = _angular(_phi_netrep(x, alpha), _phi_netrep(y, alpha))
    assert shape.angular_shape_metric(x, y, alpha, "cpu") == pytest.approx(cov, abs=1e-7)  # default: covariance
    assert shape.angular_shape_metric(x, y, alpha, "cpu", interpolation="netrep") == pytest.approx(net, abs=1e-7)
    if alpha in (0.0, 1.0):
        assert cov == pytest.approx(net, abs=1e-7)  # CCA and Procrustes ends agree
    else:
        assert abs(cov - net) > 1e-3
    with pytest.raises(ConfigError, match="netrep"):
        shape.angular_shape_metric(x, y, alpha, "cpu", interpolation="williams")


def _kernel(a, metric):
    if metric == "cosine":
        an = a / np.linalg.norm(a, axis=1, keepdims=True)
        return an @ an.T
    return -((a[:, None, :] - a[None, :, :]) ** 2).sum(-1)


def _knn_mask(k_mat, k):
    s = k_mat.copy()
    np.fill_diagonal(s, -np.inf)
    m = np.zeros_like(s, dtype=bool)
    idx = np.argsort(-s, axis=1, kind="stable")[:, :k]
    np.put_along_axis(m, idx, True, axis=1)
    return m


def _hsic_unbiased(a, b):
    """Song et al. 2012, for matrices with zero diagonals."""
    n = len(a)
    one = np.ones(n)
    t = np.trace(a @ b) + (one @ a @ one) * (one @ b @ one) / ((n - 1) * (n - 2)) - 2 * (one @ a @ b @ one) / (n - 2)
    return t / (n * (n - 3))


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_cknna_variants_match_their_reference_formulas(metric):
    x, y = _pair(n=60)
    k = 8
    kx, ky = _kernel(x, metric), _kernel(y, metric)
    mx, my = _knn_mask(kx, k), _knn_mask(ky, k)
    # paper: row-centred kernels, K̄ᵢⱼ = Kᵢⱼ − meanₗ Kᵢₗ, summed over the shared neighbours
    kb, lb = kx - kx.mean(1, keepdims=True), ky - ky.mean(1, keepdims=True)
    paper = ((mx & my) * kb * lb).sum() / np.sqrt((mx * kb * kb).sum() * (my * lb * lb).sum())
    # platonic-rep's code: unbiased HSIC of the masked kernels
    m = mx & my
    self_x, self_y = _hsic_unbiased(mx * kx, mx * kx), _hsic_unbiased(my * ky, my * ky)
    platonic = _hsic_unbiased(m * kx, m * ky) / np.sqrt(self_x * self_y)
    assert neighbors.cknna(x, y, k, metric, "cpu") == pytest.approx(paper, abs=1e-9)  # default: the paper
    assert neighbors.cknna(x, y, k, metric, "cpu", variant="paper") == pytest.approx(paper, abs=1e-9)
    assert neighbors.cknna(x, y, k, metric, "cpu", variant="platonic") == pytest.approx(platonic, abs=1e-9)
    assert abs(paper - platonic) > 1e-3
    with pytest.raises(ConfigError, match="platonic"):
        neighbors.cknna(x, y, k, metric, "cpu", variant="huh")


def test_twonn_without_discarding_is_finite_and_matches_scikit_dimension():
    skdim = pytest.importorskip("skdim")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 4)) @ rng.normal(size=(4, 12))  # 4-dimensional data in 12 dimensions
    n = len(x)
    d0 = twonn_dimension(x, discard_fraction=0.0, device="cpu")
    assert np.isfinite(d0) and 3.0 < d0 < 5.0
    # scikit-dimension keeping N−1 of the N ratios (fraction 0.5/N) fits exactly the points with F < 1
    with np.errstate(divide="ignore"):  # scikit-dimension also returns the (unused) −log(1−F) = ∞ point
        ref = skdim.id.TwoNN(discard_fraction=0.5 / n).fit(x).dimension_
        mle = skdim.id.TwoNN(discard_fraction=0.0, method="mle").fit(x).dimension_
    assert d0 == pytest.approx(ref, rel=1e-9)
    assert twonn_dimension(x, discard_fraction=0.0, method="mle", device="cpu") == pytest.approx(mle, rel=1e-9)


def test_reference_settings_are_cli_and_study_options(tmp_path):
    """Issue 20: every convention whose command exposes the metric selects the reference's setting from the CLI and
    from a study file, and records it in the rows' params (disentangle: --sap-mode, --mi-estimator, --infoe-split,
    --batch-pool; quantize-embeddings: --ranking; sae train: --dead-rows); a bad value is one `error:` line naming
    the choices."""
    import io
    import json

    import pandas as pd

    from repscope.disentangle import disentanglement_scores
    from repscope.store import write_store
    from repscope.study import load_study
    from tests.reliability.conftest import run_main

    rng = np.random.default_rng(0)
    f = rng.integers(0, 4, size=(300, 2))
    z = np.column_stack([f + 0.3 * rng.normal(size=f.shape), rng.normal(size=300)]).astype(np.float32)
    store = write_store(tmp_path / "s", {"h": z}, pd.DataFrame({"id": np.arange(300), "a": f[:, 0], "b": f[:, 1]}),
                        provenance={"model": "toy"})
    ref = disentanglement_scores(z, f, metrics="sap,infomec,factor_vae", sap_mode="classifier", mi_estimator="ksg",
                                 infoe_split="train", batch_pool="shared", n_train=10000, n_eval=5000)
    opts = {"--sap-mode": "classifier", "--mi-estimator": "ksg", "--infoe-split": "train", "--batch-pool": "shared"}
    r = run_main("disentangle", store.root, "-f", "a,b", "-m", "sap,infomec,factor_vae", "--db",
                 tmp_path / "r.duckdb", "--format", "csv", *[t for kv in opts.items() for t in kv])
    assert r.returncode == 0, r.stderr
    df = pd.read_csv(io.StringIO(r.stdout))
    got = df.set_index("metric")["value"]
    for name, value in ref.items():
        assert got[name] == pytest.approx(value, abs=1e-9), name
    params = json.loads(df["params"].iloc[0]) if isinstance(df["params"].iloc[0], str) else df["params"].iloc[0]
    assert {k: params[k] for k in ("sap_mode", "mi_estimator", "infoe_split", "batch_pool")} == {
        "sap_mode": "classifier", "mi_estimator": "ksg", "infoe_split": "train", "batch_pool": "shared"}
    for args, what in ((("disentangle", store.root, "-f", "a", "--batch-pool", "one"), "batch_pool 'one'"),
                       (("disentangle", store.root, "-f", "a", "--infoe-split", "val"), "infoe_split 'val'"),
                       (("quantize-embeddings", store.root, "--ranking", "usearch"), "--ranking 'usearch'"),
                       (("sae", "train", store.root, "-l", "h", "--dead-rows", "train"), "--dead-rows 'train'")):
        r = run_main(*args, "--db", tmp_path / "x.duckdb")
        assert r.returncode == 2 and what in r.stderr and "choose one of" in r.stderr, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1
    y = tmp_path / "s.yaml"
    for step, params in (("disentangle", {"factors": "a", "batch_pool": "one"}),
                         ("quantize_embeddings", {"ranking": "usearch"}),
                         ("sae", {"layer": "h", "dead_rows": "train"})):
        y.write_text(json.dumps({"name": "c", "workdir": str(tmp_path / "w"), "stores": [
            {"name": "s", "model": "digits-mlp:0", "data": "digits"}],
            "analyses": [{"run": step, "stores": ["s"], "params": params}]}))
        with pytest.raises(ConfigError, match="choose one of"):
            load_study(y)

"""The generic registry, and the contract it serves: a measure or probe registered from outside the package (here,
from inside a test) is resolved by name, checked by the generic property checkers, and treated by its declared
task, with no other edit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import spearmanr
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import LinearRegression
from sklearn.metrics import r2_score
from sklearn.model_selection import KFold

from repscope.errors import ConfigError
from repscope.geometry.measures import MEASURES as GEOMETRY
from repscope.geometry.measures import GeometryMeasure, default_measures, get_measures
from repscope.geometry.measures import register as register_geometry
from repscope.probe import PROBES, few_shot_curve, is_regression, layer_sweep, make_probe
from repscope.probe import register as register_probe
from repscope.probe.registry import few_shot_params
from repscope.registry import Registry
from repscope.similarity.matrix import similarity_matrices
from repscope.similarity.registry import MEASURES as SIMILARITY
from repscope.similarity.registry import get_measure, measures
from repscope.similarity.registry import register as register_similarity
from repscope.store import write_store
from repscope.testing import check_geometry_invariances, check_similarity_properties


# ---- the registry itself --------------------------------------------------------------------------------------
def test_register_lookup_aliases_metadata_and_errors():
    reg: Registry[int] = Registry("widget")
    reg.register("alpha", 1, aliases=("a", "first"), paper="X 2020", default=True)

    @reg.register("beta", default=False)
    def beta() -> int:
        return 2

    assert reg.get("alpha") == 1 and reg.get(" A ") == 1 and reg.get("FIRST") == 1
    assert reg.get("beta") is beta and reg["beta"]() == 2
    assert reg.names() == ["alpha", "beta"] and list(reg) == ["alpha", "beta"] and len(reg) == 2
    assert reg.names(default=True) == ["alpha"] and reg.names(default=False) == ["beta"]
    entry = reg.entry("a")
    assert (entry.name, entry.obj, entry.aliases, entry.metadata["paper"]) == ("alpha", 1, ("a", "first"), "X 2020")
    with pytest.raises(TypeError):
        entry.metadata["paper"] = "changed"  # declared metadata is read-only
    assert "a" in reg and "beta" in reg and "gamma" not in reg and 3 not in reg
    with pytest.raises(ConfigError, match=r"^unknown widget 'gamma'; choose one of alpha, beta \(aliases: a=alpha"):
        reg.get("gamma")
    with pytest.raises(ConfigError, match="already registered"):
        reg.register("ALPHA", 3)
    with pytest.raises(ConfigError, match="already registered"):
        reg.register("delta", 4, aliases=("first",))  # an alias is taken too
    removed = reg.unregister("first")
    assert removed.name == "alpha" and reg.names() == ["beta"] and "a" not in reg
    reg.register("alpha", 5, aliases=("a",))  # a removed name (and its aliases) can be registered again
    assert reg.get("a") == 5 and reg.names() == ["beta", "alpha"]


def test_built_in_registries_keep_their_names_and_aliases():
    assert get_measure("cka") is SIMILARITY.get("linear_cka") and get_measure("mknn").name == "mutual_knn"
    assert [m.name for m in measures("cka,pwcca")] == ["linear_cka", "pwcca"]
    # the built-ins come first, in order (an entry added later, as in CONTRIBUTING.md, comes after them)
    assert PROBES.names()[:6] == ["logistic", "nb", "lda", "knn", "sparse", "ridge"]
    assert set(PROBES.names(task="regression")) & set(PROBES.names()[:6]) == {"ridge"}
    assert is_regression("ridge") and not is_regression("lr")
    assert make_probe("gnb").covariance == "diag" and make_probe("lda").covariance == "shared"
    assert make_probe("knn", n_neighbors=3).n_neighbors == 3  # registered defaults are overridable
    assert few_shot_params("knn", 4, 16) == {"n_neighbors": 4} and few_shot_params("sparse", 4, 5) == {"k": 5}
    assert few_shot_params("logistic", 1, 16) == {}
    with pytest.raises(ConfigError, match="^unknown probe 'svm'; choose one of logistic"):
        make_probe("svm")
    from repscope.dictionary.modules import ARCHS, build_module
    from repscope.dictionary.quantize import METHODS, make_quantizer

    assert ARCHS.names()[:5] == ["relu", "topk", "batchtopk", "jumprelu", "mp"]
    assert ARCHS.names(needs_k=True)[:3] == ["topk", "batchtopk", "mp"]
    assert build_module("topk", d_in=4, n_latents=8, k=2).arch == "topk"
    assert METHODS.names()[:6] == ["kmeans", "vq", "rvq", "pq", "scalar", "binary"]
    with pytest.raises(ConfigError, match="^unknown quantizer 'opq'; choose one of kmeans"):
        make_quantizer("opq")
    with pytest.raises(ConfigError, match="bits=0"):
        make_quantizer("pq", bits=0)
    assert default_measures()[:15] == GEOMETRY.names()[:15]  # every shipped measure runs by default
    with pytest.raises(ConfigError, match="^unknown geometry measure 'twonnn'"):
        get_measures(["twonnn"])


# ---- a toy similarity measure, registered from outside ----------------------------------------------------------
def _gram_cosine(x: torch.Tensor, y: torch.Tensor) -> float:
    """Uncentred Gram cosine ⟨XXᵀ, YYᵀ⟩_F / (‖XXᵀ‖_F ‖YYᵀ‖_F) (linear CKA without centring)."""
    kx, ky = x @ x.T, y @ y.T
    return float((kx * ky).sum() / (torch.linalg.norm(kx) * torch.linalg.norm(ky)))


@pytest.fixture
def toy_measures():
    # the truth: rotations, scalings and permutations of features leave XXᵀ unchanged; a translation does not
    register_similarity(_gram_cosine, name="toy_gram_cosine", aliases=("toygc",), paper="test toy",
                        invariant_to=("ortho", "isotropic_scaling", "permutation"))
    # a false declaration: the same function claimed to be translation-invariant
    register_similarity(_gram_cosine, name="toy_false_claim", invariant_to=("ortho", "isotropic_scaling",
                                                                             "permutation", "translation"))
    yield
    SIMILARITY.unregister("toy_gram_cosine")
    SIMILARITY.unregister("toy_false_claim")


def test_toy_similarity_measure_is_resolved_and_checked(toy_measures):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(30, 5)) + 1.0, rng.normal(size=(30, 4))
    kx, ky = x @ x.T, y @ y.T
    expected = (kx * ky).sum() / (np.linalg.norm(kx) * np.linalg.norm(ky))
    m = get_measure("TOYGC")
    assert m.name == "toy_gram_cosine" and m(x, y, device="cpu") == pytest.approx(expected, rel=1e-12)
    assert SIMILARITY.metadata("toy_gram_cosine")["invariances"]["translation"] is False
    # resolved by name at call time by the layer × layer code
    mats = similarity_matrices({"a": x, "b": y}, None, "toy_gram_cosine,cka", device="cpu")
    assert mats["toy_gram_cosine"].loc["a", "b"] == pytest.approx(expected, rel=1e-12)
    # the generic checker accepts the true declaration and catches the false one
    assert check_similarity_properties(m) == []
    errors = check_similarity_properties(get_measure("toy_false_claim"))
    assert len(errors) == 1 and "declared invariant to translation" in errors[0]


def test_checker_catches_a_false_flag_on_a_built_in_measure():
    from dataclasses import replace

    cka = get_measure("linear_cka")
    assert check_similarity_properties(cka) == []
    errors = check_similarity_properties(replace(cka, invariant_to_invertible_linear=True))
    assert any("invertible_linear" in e for e in errors)
    errors = check_similarity_properties(replace(cka, symmetric=False))
    assert any("asymmetric" in e for e in errors)


def test_toy_geometry_measure_is_checked_and_optional_by_default():
    def mean_norm(x, labels, pairs, device="auto"):
        return {"mean_norm": float(np.linalg.norm(np.asarray(x, dtype=np.float64), axis=1).mean())}

    flags = dict(invariant_to_ortho=True, invariant_to_isotropic_scaling=False, invariant_to_translation=False,
                 invariant_to_permutation=True, invariant_to_invertible_linear=False)
    register_geometry(GeometryMeasure("toy_mean_norm", mean_norm, "mean row norm", **flags), default=False)
    try:
        assert "toy_mean_norm" not in default_measures() and get_measures(["toy_mean_norm"])[0].name == "toy_mean_norm"
        assert check_geometry_invariances(GEOMETRY.get("toy_mean_norm")) == []
        lie = GeometryMeasure("toy_lie", mean_norm, "mean norm", **{**flags, "invariant_to_isotropic_scaling": True})
        errors = check_geometry_invariances(lie)
        assert len(errors) == 1 and "isotropic_scaling" in errors[0]
    finally:
        GEOMETRY.unregister("toy_mean_norm")
    assert "toy_mean_norm" not in GEOMETRY


# ---- a toy regression probe, registered from outside ------------------------------------------------------------
class _LeastSquares(RegressorMixin, BaseEstimator):
    """Ordinary least squares with an intercept (numpy), a stand-in for a contributor's regression probe."""

    def __init__(self, device: str = "auto"):
        self.device = device

    def fit(self, X, y):
        a = np.c_[np.asarray(X, dtype=np.float64), np.ones(len(y))]
        self.coef_ = np.linalg.lstsq(a, np.asarray(y, dtype=np.float64), rcond=None)[0]
        return self

    def predict(self, X):
        return np.c_[np.asarray(X, dtype=np.float64), np.ones(len(X))] @ self.coef_


@pytest.fixture
def planted_store(tmp_path):
    """Two layers; a continuous score that is linear in layer.1 (plus noise) and unrelated to layer.0."""
    rng = np.random.default_rng(1)
    n = 150
    layers = {"layer.0": rng.normal(size=(n, 6)).astype(np.float32), "layer.1": rng.normal(size=(n, 6))
              .astype(np.float32)}
    score = layers["layer.1"].astype(np.float64) @ np.array([1.0, -2.0, 0.5, 0, 0, 3.0]) + 0.5 * rng.normal(size=n)
    return write_store(tmp_path / "planted", layers, pd.DataFrame({"id": np.arange(n), "score": score}))


def test_toy_regression_probe_is_swept_as_regression(planted_store):
    register_probe("toy_ols", _LeastSquares, task="regression", paper="test toy")
    try:
        result = layer_sweep(planted_store, ["toy_ols"], "score", cv=3, seed=0, device="cpu")
        rows = result.frame()
        assert set(rows["metric"]) == {"r2", "r2_ci_low", "r2_ci_high", "spearman", "spearman_ci_low",
                                       "spearman_ci_high"}
        assert {p["eval"] for p in rows["params"]} == {"cv"} and {p["probe"] for p in rows["params"]} == {"toy_ols"}
        y = planted_store.samples["score"].to_numpy(dtype=np.float64)
        folds = list(KFold(n_splits=3, shuffle=True, random_state=0).split(y))  # plain K-fold on a continuous target
        for layer in planted_store.layers:
            x = np.asarray(planted_store.get(layer, dtype=torch.float32), dtype=np.float64)
            r2s, rhos = [], []
            for tr, te in folds:
                p = LinearRegression().fit(x[tr], y[tr]).predict(x[te])
                r2s.append(r2_score(y[te], p))
                rhos.append(spearmanr(p, y[te]).statistic)
            got = rows[rows["layer"] == layer].set_index("metric")["value"]
            assert got["r2"] == pytest.approx(np.mean(r2s), abs=1e-5)
            assert got["spearman"] == pytest.approx(np.mean(rhos), abs=1e-9)
        got = rows.set_index(["layer", "metric"])["value"]
        assert got["layer.1", "r2"] > 0.9 and got["layer.0", "r2"] < 0.1  # the planted layer is found
        with pytest.raises(ConfigError, match="drop toy_ols"):  # few-shot curves refuse it by its declared task
            few_shot_curve(planted_store, "layer.1", ["logistic", "toy_ols"], "score")
    finally:
        PROBES.unregister("toy_ols")
    with pytest.raises(ConfigError, match="unknown probe 'toy_ols'"):
        layer_sweep(planted_store, ["toy_ols"], "score", cv=3)


def test_probe_task_must_be_declared_from_the_known_tasks():
    with pytest.raises(ConfigError, match="task 'ranking'"):
        register_probe("toy_rank", _LeastSquares, task="ranking")
    assert "toy_rank" not in PROBES


# ---- the public API ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("package", ["repscope", "repscope.probe", "repscope.similarity", "repscope.geometry",
                                     "repscope.dictionary", "repscope.store", "repscope.sources", "repscope.extract",
                                     "repscope.results"])
def test_every_exported_name_resolves(package):
    import importlib
    import types

    mod = importlib.import_module(package)
    assert mod.__all__ and len(set(mod.__all__)) == len(mod.__all__)
    for name in mod.__all__:
        assert getattr(mod, name) is not None, f"{package}.{name}"
    if package == "repscope.geometry":  # function exports never shadow the submodules the registry is built from
        assert all(isinstance(getattr(mod, m), types.ModuleType) for m in ("coding_rate", "uniformity", "spectrum"))

"""`disentangle_store` on a small RepStore (rows, layer order, subsampling, artifacts) and the one-line errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from repscope.disentangle import disentangle_store, disentanglement_scores, heatmap_payload
from repscope.disentangle.suite import disentanglement_details
from repscope.errors import ConfigError, DataError, NonFiniteError, RepscopeError
from repscope.store import write_store

N = 500


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):
    rng = np.random.default_rng(0)
    f = rng.integers(0, 4, size=(N, 3))
    samples = pd.DataFrame({"id": np.arange(N), "colour": f[:, 0], "size": f[:, 1], "kind": f[:, 2],
                            "flat": np.zeros(N, dtype=int)})
    layers = {"noise": rng.normal(size=(N, 6)).astype(np.float32),  # store order: noise, mixed, clean
              "mixed": (f @ rng.normal(size=(3, 6)) + rng.normal(size=(N, 6))).astype(np.float32),
              "clean": np.concatenate([f[:, [2, 0, 1]], rng.normal(size=(N, 2))], axis=1).astype(np.float32)}
    return write_store(tmp_path_factory.mktemp("dis") / "s", layers, samples, provenance={"model": "toy"})


def test_rows_per_layer_with_layer_index(store) -> None:
    res = disentangle_store(store, "colour,size,kind", metrics=["mig", "dci"], max_rows=300, seed=1)
    df = res.frame()
    assert set(df["metric"]) == {"mig", "dci_disentanglement", "dci_completeness", "dci_informativeness"}
    assert dict(zip(df["layer"], df["layer_index"], strict=True)) == {la: store.layers.index(la) for la in
                                                                      store.layers}
    assert (df["store"] == store.name).all() and (df["model"] == "toy").all()
    assert all(p["n_rows"] == 300 and p["factors"] == ["colour", "size", "kind"] for p in df["params"])
    mig = df[df.metric == "mig"].set_index("layer")["value"]
    assert mig["clean"] > 0.9 > 0.1 > mig["noise"]
    assert mig["clean"] > mig["mixed"]
    # the store result equals the pure function on the same subsample (seeded rows, sorted)
    rows = np.sort(np.random.default_rng(1).choice(N, 300, replace=False))
    x = store.get("clean", rows).numpy()
    ref = disentanglement_scores(x, store.samples[["colour", "size", "kind"]].iloc[rows], metrics="mig", seed=1)
    assert mig["clean"] == pytest.approx(ref["mig"], abs=1e-12)


def test_heatmap_artifacts(store) -> None:
    res = disentangle_store(store, ["colour", "size", "kind"], metrics="mig,dci", layers="clean")
    (art,) = res.artifacts
    assert art.analysis == "disentangle" and art.name == "heatmap:clean"
    p = art.payload
    assert p["factors"] == ["colour", "size", "kind"] and p["layer_index"] == store.layers.index("clean")
    nmi, imp = np.array(p["nmi"]), np.array(p["dci_importance"])
    assert nmi.shape == (3, 5) and imp.shape == (3, 5)
    # latent 0 holds `kind`, 1 `colour`, 2 `size`: each factor's row peaks there, in both heatmaps
    assert nmi.argmax(axis=1).tolist() == [1, 2, 0] and imp.argmax(axis=1).tolist() == [1, 2, 0]
    assert nmi.max() == pytest.approx(1.0, abs=1e-3)


def test_heatmap_payload_orientation() -> None:
    f = np.random.default_rng(0).integers(0, 3, size=(200, 2))
    det = disentanglement_details(np.stack([f[:, 1], f[:, 0], f[:, 0]], axis=1).astype(float), f, metrics="mig")
    p = heatmap_payload(det)
    assert np.array(p["nmi"]).shape == (2, 3) and p["dci_importance"] is None


def test_missing_factor_column(store) -> None:
    with pytest.raises(DataError, match="factor column 'shape' not in samples.*available: .*colour") as e:
        disentangle_store(store, "colour,shape")
    assert "\n" not in str(e.value)


def test_single_valued_factor(store) -> None:
    with pytest.raises(DataError, match="factor 'flat' has a single value .*drop it") as e:
        disentangle_store(store, "colour,flat")
    assert "\n" not in str(e.value)


def test_latents_with_nan() -> None:
    x = np.random.default_rng(0).normal(size=(50, 3))
    x[7, 1] = np.nan
    with pytest.raises(NonFiniteError, match="NaN or Inf in 1 of 50 rows") as e:
        disentanglement_scores(x, np.arange(50) % 2)
    assert isinstance(e.value, RepscopeError) and "\n" not in str(e.value)


def test_unknown_metric_and_options() -> None:
    x, f = np.random.default_rng(0).normal(size=(40, 2)), np.arange(40) % 2
    with pytest.raises(ConfigError, match="unknown disentanglement metric 'migg'; choose one of mig, dci"):
        disentanglement_scores(x, f, metrics="migg")
    with pytest.raises(ConfigError, match="unknown DCI importance 'forest'"):
        disentanglement_scores(x, f, metrics="dci", importance="forest")
    with pytest.raises(DataError, match="factor 'factor0' has 30 values for 40 latent rows"):
        disentanglement_scores(x, f[:30], metrics="mig")


def test_continuous_factor_is_binned() -> None:
    rng = np.random.default_rng(0)
    t = rng.random(2000)  # a continuous factor, cut into 20 equal-width bins
    z = np.stack([t, rng.normal(size=2000)], axis=1)
    s = disentanglement_scores(z, pd.DataFrame({"t": t}), metrics="mig,sap")
    assert s["mig"] > 0.95 and s["sap"] > 0.95

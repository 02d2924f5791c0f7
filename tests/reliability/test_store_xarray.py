"""Stores are Zarr v3 hierarchies that zarr and xarray open directly, with the same numbers as RepStore.get."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr  # in the dev extra
import zarr

from repscope.store import write_store


@pytest.fixture
def store(tmp_path):
    rng = np.random.default_rng(0)
    samples = pd.DataFrame({"id": np.arange(50), "label": rng.integers(0, 4, 50)})
    layers = {"enc.0": rng.normal(size=(50, 6)), "conv/1": rng.normal(size=(50, 3, 2, 2)),
              "out": rng.normal(size=(50, 4))}
    return write_store(tmp_path / "s", layers, samples=samples, chunk_rows=16, dtype="float16")


def test_xarray_open_zarr_equals_repstore_get(store):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # consolidated metadata: no fallback warning, no "unrecognised object"
        ds = xr.open_zarr(store.root, group="arrays")
    for layer in store.layers:
        key = store.layer_info(layer)["array"]
        var = ds[key]
        assert var.dims[0] == "row" and var.shape == (store.n_rows, *store.layer_info(layer)["shape"])
        np.testing.assert_array_equal(var.values, store.get(layer).numpy())
        assert var.dtype == np.float16
    assert ds.sizes["row"] == 50


def test_zarr_open_group_lists_the_layers(store):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g = zarr.open_group(store.root, mode="r")
        arrays = g["arrays"]
        assert sorted(arrays.array_keys()) == sorted(store.layer_info(x)["array"] for x in store.layers)
        a = arrays[store.layer_info("conv/1")["array"]]
    assert a.metadata.dimension_names == ("row", "L_conv_1_dim_0", "L_conv_1_dim_1", "L_conv_1_dim_2")
    assert torch.equal(torch.from_numpy(a[:]), store.get("conv/1"))


def test_to_xarray_carries_samples_as_coordinates(store):
    ds = store.to_xarray()
    np.testing.assert_array_equal(ds["label"].values, store.labels("label"))
    sub = ds["L_out"].where(ds["label"] == 2, drop=True)
    np.testing.assert_array_equal(sub.values, store.get("out", np.flatnonzero(store.labels("label") == 2)).numpy())

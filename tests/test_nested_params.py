"""Nested study params (geometry measure parameters) are validated when the study loads, before any work."""

from __future__ import annotations

import time

import pytest

from repscope.errors import ConfigError
from repscope.study import load_study

STUDY = """name: t
workdir: {workdir}
stores:
  - {{name: d, model: "digits-mlp:0", data: "digits@100"}}
analyses:
  - {{run: geometry, stores: [d], params: {params}}}
"""


def _write(tmp_path, params: str):
    p = tmp_path / "s.yaml"
    p.write_text(STUDY.format(workdir=tmp_path / "w", params=params))
    return p


@pytest.mark.parametrize("params, message", [
    ("{params: {mle: {bogus: 1}}}", "geometry measure 'mle' has no parameter 'bogus'; it takes k1, k2"),
    ("{measures: [twonn], params: {mle: {k1: 5}}}", "params given for measure 'mle', which this step does not run"),
    ("{params: {nosuch: {k: 1}}}", "unknown geometry measure 'nosuch'"),
])
def test_bad_nested_param_fails_at_load(tmp_path, params, message):
    path = _write(tmp_path, params)
    t0 = time.perf_counter()
    with pytest.raises(ConfigError) as err:
        load_study(path)
    assert time.perf_counter() - t0 < 2.0
    assert message in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "w").exists()  # nothing extracted


def test_good_nested_param_loads(tmp_path):
    study = load_study(_write(tmp_path, "{params: {mle: {k1: 5, k2: 12}}}"))
    assert study.analyses[0].params["params"] == {"mle": {"k1": 5, "k2": 12}}


def test_profile_refuses_unknown_measure_param(tmp_path):
    import numpy as np
    import pandas as pd

    from repscope.geometry.profile import geometry_profile
    from repscope.store.writer import write_store

    x = np.random.default_rng(0).normal(size=(50, 4))
    store = write_store(tmp_path / "s", {"a": x}, pd.DataFrame({"i": range(50)}))
    with pytest.raises(ConfigError, match="has no parameter 'k3'"):
        geometry_profile(store, "mle", params={"mle": {"k3": 1}}, device="cpu")

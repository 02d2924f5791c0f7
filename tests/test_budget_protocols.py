"""The remaining probe protocols under the memory budget: few-shot reads only the rows it uses; retrieval, STS and
store concatenation subsample explicitly (rows recorded in params) when a layer does not fit `max_memory`, and the
numbers then equal the metric computed directly on the same seeded subset."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from repscope.probe import protocols
from repscope.probe.metrics import retrieval_metrics, sts_spearman
from repscope.selection import subset_rows
from repscope.store import write_store

N, D = 600, 16


def _params(frame: pd.DataFrame) -> list[dict]:
    return [json.loads(p) if isinstance(p, str) else p for p in frame["params"]]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, N)
    x = (rng.normal(size=(N, D)) + 3.0 * np.eye(3, D)[y]).astype(np.float32)
    samples = pd.DataFrame({"id": np.arange(N), "label": y, "pair": np.arange(N) // 2, "side": np.arange(N) % 2,
                            "score": np.repeat(rng.random(N // 2), 2)})
    return write_store(tmp_path_factory.mktemp("budget") / "s", {"a": x, "b": x[:, :6] + 0.1}, samples,
                       provenance={"model": "toy"}, chunk_rows=64)


def _count_reads(store, monkeypatch) -> list[int]:
    """A list that receives the row count of every `RepStore.get` from now on."""
    read: list[int] = []
    real = type(store).get

    def spy(self, layer, rows=None, *a, **kw):
        out = real(self, layer, rows, *a, **kw)
        read.append(len(out))
        return out

    monkeypatch.setattr(type(store), "get", spy)
    return read


def test_few_shot_reads_only_the_rows_it_uses(store, monkeypatch):
    read = _count_reads(store, monkeypatch)
    res = protocols.few_shot_curve(store, "a", ["nb"], shots=(1, 4), seeds=2, device="cpu")
    n_test = _params(res.frame())[0]["n_test"]
    assert read and max(read) <= n_test + 3 * (1 + 4) * 2 < N  # test set + the shots drawn (3 classes, 2 seeds)
    acc = res.frame().query("metric == 'accuracy'")["value"]
    assert (acc > 0.5).all()  # planted class means: better than chance (1/3) even from 1 shot per class


def test_retrieval_over_budget_equals_the_metric_on_the_recorded_subset(store, capsys):
    res = protocols.retrieval_sweep(store, layers=["a"], device="cpu", max_memory=50_000, seed=4)
    assert "memory budget" in capsys.readouterr().err
    f = res.frame()
    p = _params(f)[0]
    assert p["subsampled"] and p["rows_total"] == N and 0 < p["rows_used"] < N
    keep = subset_rows(N, p["rows_used"], 4)
    direct = retrieval_metrics(store.get("a", keep, dtype=torch.float32), store.labels("label")[keep], (1, 5, 10),
                               "cosine", device="cpu")
    got = dict(zip(f["metric"], f["value"], strict=True))
    assert got == pytest.approx(direct, abs=1e-12)
    full = protocols.retrieval_sweep(store, layers=["a"], device="cpu", max_memory="1GB").frame()
    assert "rows_used" not in _params(full)[0]


def test_sts_over_budget_scores_a_recorded_subset_of_pairs(store):
    ra, rb, gold = protocols.sts_pairs(store.samples)
    full = protocols.sts_sweep(store, ["a"], max_memory="1GB").frame()
    x = store.get("a", dtype=torch.float32).numpy()
    assert full["value"].iloc[0] == pytest.approx(sts_spearman(x[ra], x[rb], gold), abs=1e-12)
    sub = protocols.sts_sweep(store, ["a"], max_memory=40_000, seed=2).frame()
    p = _params(sub)[0]
    assert p["subsampled"] and p["pairs_total"] == len(gold) and p["n_pairs"] < len(gold)
    keep = subset_rows(len(gold), p["n_pairs"], 2)
    assert sub["value"].iloc[0] == pytest.approx(sts_spearman(x[ra[keep]], x[rb[keep]], gold[keep]), abs=1e-12)


def test_concat_over_budget_records_rows_used(store, tmp_path):
    other = write_store(tmp_path / "t", {"a": store.get("a", dtype=torch.float32).numpy()[:, ::-1].copy()},
                        store.samples, provenance={"model": "toy2"}, chunk_rows=64)
    whole = protocols.concat_stores([store, other], "a", probe="nb", device="cpu", max_memory="1GB").frame()
    assert not any("rows_used" in p for p in _params(whole))
    part = protocols.concat_stores([store, other], "a", probe="nb", device="cpu", max_memory=200_000).frame()
    ps = _params(part)
    assert all(p["subsampled"] and p["rows_total"] == N and p["rows_used"] < N for p in ps)
    assert set(part["store"]) == {store.name, other.name, f"{store.name}+{other.name}"}


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """One pooled layer and one token-level layer (variable lengths) over the same samples."""
    from repscope.extract import extract
    from repscope.sources.datasets import ArrayDataset
    from repscope.sources.models import TorchModuleAdapter

    class Toy(TorchModuleAdapter):  # a 2-D output is stored pooled, a (B, T, D) one with a mask token-level
        def run(self, items, layers):
            x = torch.as_tensor(items, dtype=torch.float32)
            tok = x[:, None, :].repeat(1, 3, 1)
            mask = torch.ones(len(x), 3, dtype=torch.long)
            mask[::2, 2] = 0  # variable lengths
            return {"pooled": x, "tok": tok}, mask

    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    x = (rng.normal(size=(200, 8)) + 2.0 * y[:, None]).astype(np.float32)
    data = ArrayDataset(x, {"label": y, "pair": np.arange(200) // 2, "side": np.arange(200) % 2,
                            "score": np.repeat(rng.random(100), 2)}, name="mixed")
    model = Toy(torch.nn.Sequential(torch.nn.Identity()), device="cpu", name="toy")
    model._modules = {"pooled": None, "tok": None}
    try:
        return extract(model, data, tmp_path_factory.mktemp("mixed") / "m", pooling="none", progress=False)
    except Exception as err:  # the toy must give a store with a token layer; say why if the adapter refuses
        pytest.fail(f"could not build a store with a token layer: {err}")


def test_token_layers_are_skipped_by_default_and_refused_by_name(mixed):
    from repscope.errors import DataError

    tokens = [la for la in mixed.layers if mixed.is_tokens(la)]
    pooled = [la for la in mixed.layers if not mixed.is_tokens(la)]
    assert tokens and pooled, mixed.layers
    sweep = protocols.layer_sweep(mixed, ["nb"], device="cpu").frame()
    assert set(sweep["layer"]) == set(pooled)
    assert set(protocols.retrieval_sweep(mixed, device="cpu").frame()["layer"]) == set(pooled)
    assert set(protocols.sts_sweep(mixed).frame()["layer"]) == set(pooled)
    for call in (lambda: protocols.layer_sweep(mixed, ["nb"], layers=[tokens[0]], device="cpu"),
                 lambda: protocols.retrieval_sweep(mixed, layers=[tokens[0]], device="cpu"),
                 lambda: protocols.sts_sweep(mixed, [tokens[0]]),
                 lambda: protocols.few_shot_curve(mixed, tokens[0], ["nb"], device="cpu")):
        with pytest.raises(DataError, match="token-level"):
            call()


def test_retrieval_and_concat_read_only_the_rows_they_use(store, tmp_path, monkeypatch):
    other = write_store(tmp_path / "t2", {"a": store.get("a", dtype=torch.float32).numpy()[:, ::-1].copy()},
                        store.samples, provenance={"model": "toy2"}, chunk_rows=64)
    read = _count_reads(store, monkeypatch)
    used = _params(protocols.retrieval_sweep(store, layers=["a"], device="cpu", max_memory=50_000).frame())[0]
    assert read == [used["rows_used"]] and used["rows_used"] < N
    read.clear()
    part = protocols.concat_stores([store, other], "a", probe="nb", device="cpu", max_memory=200_000).frame()
    assert read == [_params(part)[0]["rows_used"]] * 2


def test_geometry_refuses_a_budget_that_leaves_under_three_rows(store):
    from repscope.errors import DataError
    from repscope.geometry.profile import geometry_profile

    with pytest.raises(DataError, match="at least 3"):
        geometry_profile(store, layers=["a"], measures=["twonn"], max_memory=1, device="cpu")


def test_group_subsample_keeps_rows_without_a_group():
    groups = np.array([np.nan] * 90 + list(np.repeat(np.arange(5), 2)), dtype=float)
    keep = subset_rows(100, 50, 0, groups=groups)
    assert 40 <= len(keep) <= 60 and (keep < 90).sum() > 30  # unpaired rows are drawn, one per group
    paired = keep[keep >= 90]
    assert all(((paired - 90) // 2 == g).sum() == 2 for g in np.unique((paired - 90) // 2))  # pairs stay whole

"""Embedding quantization: codes equal sentence-transformers' `quantize_embeddings`, Hamming search equals a
brute-force reference exactly, rescoring and the per-scheme scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from repscope.compress.evaluate import eval_plan
from repscope.compress.quantize_embeddings import (
    SCHEMES,
    Int8Ranges,
    bytes_per_vector,
    pack_bits,
    quantize,
    unpack_bits,
)
from repscope.compress.quantized_eval import label_recall, quantization_scores
from repscope.compress.search import hamming_distances, hamming_topk, hamming_topk_torch, rescore
from repscope.errors import ConfigError, DataError


def _emb(n=300, d=48, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, d)) * rng.uniform(0.2, 2.0, d) + rng.normal(size=d)).astype(np.float32)


def test_int8_and_binary_codes_equal_sentence_transformers():
    st = pytest.importorskip("sentence_transformers")
    from sentence_transformers.quantization import quantize_embeddings as st_quantize

    calib, x = _emb(400, seed=1), _emb(300, seed=2) * 1.3  # out-of-range values saturate in both
    ours = quantize(x, "int8", calibration=calib).codes.numpy()
    ref = st_quantize(x, precision="int8", calibration_embeddings=calib)
    assert ref.dtype == np.int8 and np.array_equal(ours, ref)
    assert np.array_equal(quantize(x, "binary").codes.numpy(), st_quantize(x, precision="ubinary"))
    signed = (quantize(x, "binary").codes.numpy().astype(np.int16) - 128).astype(np.int8)
    assert np.array_equal(signed, st_quantize(x, precision="binary"))
    x45 = x[:, :45]  # a width that is not a multiple of 8 pads the last byte with zero bits
    assert np.array_equal(pack_bits(x45).numpy(), st_quantize(x45, precision="ubinary"))
    assert st is not None


def test_pack_unpack_and_bytes():
    x = _emb(20, 45)
    bits = unpack_bits(pack_bits(x), 45)
    assert torch.equal(bits, torch.as_tensor(x > 0).to(torch.uint8))
    assert [bytes_per_vector(s, 384) for s in ("float32", "float16", "int8", "binary")] == [1536, 768, 384, 48]
    q = quantize(x, "int8", calibration=x)
    dec = q.decode()
    assert (dec - torch.as_tensor(x)).abs().max() <= q.ranges.step.max() * 0.5 + 1e-5  # bucket centres


@pytest.mark.parametrize("impl", ["default", "torch"])
def test_hamming_topk_equals_brute_force_exactly(impl):
    rng = np.random.default_rng(0)
    db = rng.integers(0, 256, size=(700, 6), dtype=np.uint8)
    db[100:110] = db[5]  # exact duplicates: ties must go to the lower index
    q = np.concatenate([rng.integers(0, 256, size=(50, 6), dtype=np.uint8), db[[5, 100, 3]]])
    fn = hamming_topk if impl == "default" else hamming_topk_torch
    d, i = fn(q, db, 15, device="cpu")
    full = hamming_distances(q, db).numpy()
    ref_i = np.lexsort((np.broadcast_to(np.arange(700), full.shape), full), axis=1)[:, :15]
    assert np.array_equal(i.numpy(), ref_i)
    assert np.array_equal(d.numpy(), np.take_along_axis(full, ref_i, 1))
    assert list(i[50, :11].numpy()) == [5, *range(100, 110)]


def test_hamming_refuses_bad_input():
    a = np.zeros((3, 4), np.uint8)
    with pytest.raises(DataError, match="query codes have 4 bytes but database codes 5"):
        hamming_topk(a, np.zeros((3, 5), np.uint8), 2)
    with pytest.raises(DataError, match="packed uint8 codes"):
        hamming_topk(a.astype(np.float32), a, 2)
    with pytest.raises(ConfigError, match="k must be between 1 and the 3"):
        hamming_topk(a, a, 4)


def test_rescore_orders_by_float_score():
    q = torch.tensor([[1.0, 0.0]])
    docs = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [1.0, 0.0]])
    assert rescore(q, torch.tensor([[0, 2, 3, 1]]), docs, 3).tolist() == [[3, 1, 2]]  # tie kept in candidate order


def test_label_recall_matches_the_one_label_retrieval():
    from repscope.kernels.knn import knn_search
    from repscope.kernels.retrieval import retrieval_metrics

    x = _emb(200, 16)
    y = np.random.default_rng(3).integers(0, 6, 200)
    y[0] = 99  # a label that occurs once is skipped by both
    _, idx = knn_search(torch.as_tensor(x), torch.as_tensor(x), 10, exclude_self=True)
    assert label_recall(idx, y) == pytest.approx(retrieval_metrics(x, y, ks=(10,), device="cpu")["recall@10"])


def test_scores_per_scheme_and_rescoring_helps_binary():
    rng = np.random.default_rng(0)
    n, d = 500, 96
    y = rng.integers(0, 8, n)
    x = rng.normal(size=(8, d))[y] * 0.6 + rng.normal(size=(n, d))
    plan = eval_plan(pd.DataFrame({"label": y}), n, target="label", seed=0)
    df = quantization_scores(x, plan, schemes="int8,binary,float16", rescore_r=4, device="cpu")
    v = df.set_index(["scheme", "rescore", "metric"])["value"]
    assert v[("float32", 0, "recall@10_vs_float32")] == 1.0
    assert v[("int8", 0, "recall@10_vs_float32")] > 0.8
    assert v[("binary", 4, "recall@10_vs_float32")] > v[("binary", 0, "recall@10_vs_float32")] + 0.1
    assert set(df[df["scheme"] == "binary"]["bytes_per_vector"]) == {12}
    assert ("binary", 0, "accuracy") in v.index and ("binary", 4, "accuracy") not in v.index
    with pytest.raises(ConfigError, match="unknown embedding quantization scheme 'int4'; choose one of"):
        quantization_scores(x, plan, schemes="int8,int4")
    assert SCHEMES.resolve("fp16") == "float16"


def test_int8_calibration_needs_rows():
    with pytest.raises(DataError, match="at least 2 rows"):
        Int8Ranges.calibrate(np.zeros((1, 4)))
    with pytest.raises(ConfigError, match="calibration split"):
        quantize(np.zeros((3, 4)), "int8")


def _int8_search_data(n=400, d=48, seed=5):
    """Unit rows (quantization_scores normalises) with per-dimension offsets and scales, so that code inner products,
    cosines of decoded vectors and ⟨q, decoded⟩ rank differently; half calibration rows, half evaluation rows."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 6, n)
    x = rng.normal(size=(6, d))[y] * 0.8 + rng.normal(size=(n, d)) * rng.uniform(0.2, 2.0, d) + rng.normal(size=d)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    plan = eval_plan(pd.DataFrame({"label": y}), n, target="label", seed=0)
    return x, plan


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """Leave-one-out top-k by descending score, ties to the lower index."""
    s = scores.astype(np.float64).copy()
    np.fill_diagonal(s, -np.inf)
    idx = np.broadcast_to(np.arange(s.shape[1]), s.shape)
    return np.lexsort((idx, -s), axis=1)[:, :k]


def _rescored(q: np.ndarray, cand: np.ndarray, docs: np.ndarray, k: int) -> np.ndarray:
    """Candidates re-ranked by ⟨q, doc⟩ (descending; ties keep candidate order), top k."""
    s = np.einsum("md,mcd->mc", q, docs[cand])
    return np.take_along_axis(cand, np.argsort(-s, axis=1, kind="stable")[:, :k], axis=1)


def test_int8_rankings_match_their_reference_recipes():
    """Default `ranking="cosine"`: first stage by the cosine of decoded bucket centres, rescoring by ⟨q, unit-length
    decoded doc⟩. `ranking="sentence-transformers"`: the recipe of sentence-transformers' `semantic_search_usearch`,
    written here in numpy: int8 codes from its own `quantize_embeddings`, first stage by the inner product of the
    codes ("ip" index, query coded with the same ranges), rescoring by ⟨float32 query, lo + (code + 128)·step⟩ (its
    dequantisation, bucket lower edges) without renormalising. Both pinned through `quantization_scores`' recall
    against exact float32 search; on this data the two rankings really differ."""
    from sentence_transformers.util.quantization import quantize_embeddings as st_quantize

    from repscope.compress.quantized_eval import first_stage

    x, plan = _int8_search_data()
    fit, ev = x[plan.fit].astype(np.float32), x[plan.eval].astype(np.float32)
    k, r = 10, 4
    lo, hi = fit.min(0), fit.max(0)
    step = (hi - lo) / 255
    codes = st_quantize(ev, precision="int8", calibration_embeddings=fit)
    ours_q = quantize(ev, "int8", calibration=fit)
    assert np.array_equal(ours_q.codes.numpy(), codes)
    exact = _top(ev.astype(np.float64) @ ev.T.astype(np.float64), k)

    # sentence-transformers: code inner product, then ⟨q, dequantised⟩
    ip = codes.astype(np.int64) @ codes.T.astype(np.int64)
    st_first = _top(ip, k * r)
    st_final = _rescored(ev.astype(np.float64), st_first, lo + (codes.astype(np.float64) + 128) * step, k)
    assert np.array_equal(first_stage(ours_q, k * r, ranking="sentence-transformers").numpy(), st_first)
    # repscope's default: cosine of the decoded bucket centres, then ⟨q, unit decoded⟩
    dec = lo + (codes.astype(np.float64) + 128.5) * step
    unit = dec / np.linalg.norm(dec, axis=1, keepdims=True)
    cos_first = _top(unit @ unit.T, k * r)
    cos_final = _rescored(ev.astype(np.float64), cos_first, unit, k)
    assert np.array_equal(first_stage(ours_q, k * r).numpy(), cos_first)

    def recall(idx):
        return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(idx, exact, strict=True)]))

    for ranking, first, final in (("cosine", cos_first, cos_final), ("sentence-transformers", st_first, st_final)):
        df = quantization_scores(x, plan, schemes="int8", rescore_r=r, k=k, probe=False, device="cpu",
                                 ranking=ranking)
        v = df.set_index(["scheme", "rescore", "metric"])["value"]
        assert v[("int8", 0, "recall@10_vs_float32")] == pytest.approx(recall(first[:, :k]), abs=1e-12)
        assert v[("int8", r, "recall@10_vs_float32")] == pytest.approx(recall(final), abs=1e-12)
    assert not np.array_equal(st_first, cos_first) and recall(st_first[:, :k]) != recall(cos_first[:, :k])
    with pytest.raises(ConfigError, match="unknown ranking 'usearch'; choose one of cosine, sentence-transformers"):
        quantization_scores(x, plan, schemes="int8", ranking="usearch")


def test_int8_ip_topk_refuses_bad_input():
    from repscope.compress.search import int8_ip_topk

    c = np.zeros((5, 4), np.int8)
    with pytest.raises(DataError, match="int8 codes"):
        int8_ip_topk(c.astype(np.float32), c, 2)
    with pytest.raises(ConfigError, match="k must be between 1 and the 4"):
        int8_ip_topk(c, c, 5, exclude_self=True)
    s, i = int8_ip_topk(c, c, 4, exclude_self=True)  # all scores tie: lower indices first, self left out
    assert i[0].tolist() == [1, 2, 3, 4] and i[3].tolist() == [0, 1, 2, 4] and s.abs().sum() == 0

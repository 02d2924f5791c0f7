"""One layer of store A against one layer of store B: neuron matching and stitching, each returned as a `Result`.

Shared by the CLI (`repscope match`) and the demo; the caller records the Result.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from repscope.results import Result
from repscope.store.pairing import check_paired
from repscope.store.repstore import layer_position


def _pair_fields(store_a: Any, store_b: Any, layer: str, layer_b: str) -> dict[str, Any]:
    return {"layer": layer, "layer_b": layer_b, "store": f"{store_a.name} vs {store_b.name}", "model": store_a.model,
            "layer_index": layer_position(store_a, layer), "layer_b_index": layer_position(store_b, layer_b)}


def match_layer_pair(store_a: Any, store_b: Any, layer: str, layer_b: str | None = None, xa: Any = None,
                     xb: Any = None, rows: np.ndarray | None = None, lasso: bool = False, alpha: float = 0.01,
                     device: str = "auto") -> Result:
    """Neuron matching of `layer` of A and `layer_b` of B (Li et al. 2016, Hungarian on correlations): rows of
    analysis 'neuron_match' (mean/median matched correlation, fraction > 0.5, mean best correlation, optional
    Lasso one-to-many R²) and the matched-correlation curve as an artifact. `xa`/`xb` skip reading the stores."""
    from repscope.similarity.matrix import load_layers
    from repscope.similarity.neurons import lasso_one_to_many, match_neurons

    layer_b = layer_b or layer
    pairing = check_paired(store_a, store_b) if xa is None or xb is None else {}
    xa = load_layers(store_a, [layer], rows)[layer] if xa is None else xa
    xb = load_layers(store_b, [layer_b], rows)[layer_b] if xb is None else xb
    t0 = time.perf_counter()
    m = match_neurons(xa, xb, device)
    secs = time.perf_counter() - t0
    params = {"n": int(xa.shape[0]), "d_a": int(xa.shape[1]), "d_b": int(xb.shape[1]), "store_b": store_b.name,
              **pairing}
    vals = {"mean_matched_corr": m.mean, "median_matched_corr": float(np.median(m.corr)),
            "frac_matched_corr_gt_0.5": float(np.mean(m.corr > 0.5)), "mean_best_corr": float(m.best.mean())}
    if lasso:
        sp = lasso_one_to_many(xa, xb, alpha=alpha)
        vals["lasso_mean_r2"] = sp.mean_r2
        vals["lasso_mean_nonzero"] = float(sp.nonzero.mean())
        params["alpha"] = alpha
    result = Result()
    fields = _pair_fields(store_a, store_b, layer, layer_b)
    for k, v in vals.items():
        result.add("neuron_match", k, float(v), params=params, seconds=secs, **fields)
    result.add_artifact("neuron_match", f"{store_a.name}:{layer} vs {store_b.name}:{layer_b}",
                        {"store_a": store_a.name, "store_b": store_b.name, "layer": layer, "layer_b": layer_b,
                         "curve": [round(float(c), 5) for c in m.curve],
                         "best": [round(float(c), 5) for c in m.best]})
    return result


def stitch_layer_pair(store_a: Any, store_b: Any, layer: str, target: str = "label", layer_b: str | None = None,
                      kinds: tuple[str, ...] = ("affine", "orthogonal"), n_anchors: int | None = 64,
                      rows: np.ndarray | None = None, device: str = "auto") -> Result:
    """Linear stitching A → B for each map kind (analysis 'stitching': R², B's head on B and on mapped A) and,
    with `n_anchors`, zero-shot stitching through relative representations (Moschella et al. 2023; analysis
    'relative_stitching'); heads are trained on sample column `target` (recorded as params["label"])."""
    from repscope.similarity.matrix import load_layers
    from repscope.similarity.relative import zero_shot_stitching
    from repscope.similarity.stitching import stitching_score

    layer_b = layer_b or layer
    pairing = check_paired(store_a, store_b)  # the rows pair (or an explicit opt-in, recorded in params)
    xa = load_layers(store_a, [layer], rows)[layer]
    xb = load_layers(store_b, [layer_b], rows)[layer_b]
    labels = store_a.labels(target)
    labels = labels if rows is None else labels[rows]
    fields = _pair_fields(store_a, store_b, layer, layer_b)
    result = Result()
    for kind in kinds:
        t0 = time.perf_counter()
        res = stitching_score(xa, xb, labels, kind=kind, device=device)
        secs = time.perf_counter() - t0
        for k, v in res.items():
            result.add("stitching", k, v, params={"kind": kind, "label": target, **pairing}, seconds=secs, **fields)
    if n_anchors:
        t0 = time.perf_counter()
        rel = zero_shot_stitching(xa, xb, labels, n_anchors=n_anchors, device=device)
        secs = time.perf_counter() - t0
        for k, v in rel.items():
            result.add("relative_stitching", k, v, params={"n_anchors": n_anchors, "label": target, **pairing},
                       seconds=secs, **fields)
    return result

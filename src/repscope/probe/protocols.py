"""Probe protocols over a RepStore; each returns a `Result` (tidy rows, recorded by the caller).

Analyses: `probe` (per-layer sweep), `probe_few_shot`, `concept_depth`, `probe_concat`, `retrieval`, `sts`.
`as_table(result)` gives the rows as one DataFrame row per estimate (value, ci_low, ci_high, params as columns).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import clone
from sklearn.metrics import r2_score

from repscope import budget as mb
from repscope.errors import ConfigError, DataError, format_choices
from repscope.kernels.metrics import mean_ci, spearman, sts_spearman, wilson_ci
from repscope.kernels.retrieval import retrieval_metrics
from repscope.kernels.streaming import blocks, streaming_predict, streaming_score
from repscope.probe.registry import PROBES, canonical, few_shot_params, is_regression, make_probe
from repscope.results import Result
from repscope.selection import subset_rows
from repscope.store.repstore import layer_position, pooled_layers, target_values


@dataclass
class Split:
    """Train/test index sets of one evaluation; `mode` is cv, split (store column) or holdout."""

    folds: list[tuple[np.ndarray, np.ndarray]]
    mode: str


def make_split(samples: pd.DataFrame | None, y: np.ndarray, rows: np.ndarray, cv: int | None = None,
               test_size: float = 0.25, seed: int = 0, classify: bool = True) -> Split:
    """k-fold CV when `cv` ≥ 2; else the store's `split` column (train vs test, or dev); else a (stratified) holdout.

    Indices are positions into `y` (= into `rows`).
    """
    from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

    n = len(y)
    strat = None
    if classify:
        _, counts = np.unique(y, return_counts=True)
        strat = y if counts.min() >= 2 else None
    if cv is not None and cv >= 2:
        if classify and strat is not None:
            k = min(int(cv), int(np.unique(y, return_counts=True)[1].min()))
            if k < 2:
                raise DataError("a class has a single sample; cannot cross-validate, drop that class or use --cv 0")
            skf = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
            return Split(list(skf.split(np.zeros(n), y)), "cv")
        kf = KFold(n_splits=int(cv), shuffle=True, random_state=seed)
        return Split(list(kf.split(np.zeros(n))), "cv")
    if samples is not None and "split" in samples.columns:
        sp = samples["split"].astype(str).str.lower().to_numpy()[rows]
        train = np.nonzero(sp == "train")[0]
        for name in ("test", "dev", "validation", "val"):
            test = np.nonzero(sp == name)[0]
            if len(train) and len(test):
                return Split([(train, test)], "split")
    tr, te = train_test_split(np.arange(n), test_size=test_size, random_state=seed, stratify=strat)
    return Split([(np.sort(tr), np.sort(te))], "holdout")


def _features(store, layer: str, rows: np.ndarray | None = None) -> torch.Tensor:
    """(rows, width) float32 features of a pooled layer, reading only `rows` (sorted, distinct sample rows) when
    given; n_rows of them means all rows."""
    if store.is_tokens(layer):
        raise DataError(f"layer '{layer}' of store '{store.name}' is token-level; probes need pooled layers "
                        "(re-extract with a pooling such as mean)")
    whole = rows is None or len(rows) == store.n_rows
    x = store.get(layer, dtype=torch.float32) if whole else store.get(layer, rows, dtype=torch.float32)
    return x.reshape(x.shape[0], -1)


def budget_positions(n: int, width: int, max_memory: int | str | None, copies: float, seed: int,
                     what: str) -> np.ndarray | None:
    """None when `copies` working copies of n rows × `width` floats fit `max_memory` (None: the default budget);
    else the seeded, sorted positions (`subset_rows`) of the most rows that fit, with a one-line warning. Callers
    record len(positions) as rows_used in their params."""
    b = mb.resolve_budget(max_memory)
    if mb.fits(n, width, b, copies):
        return None
    keep = mb.fitting_rows(n, width, b, copies, seed)
    mb.warn(f"{what}: {n} rows need ~{mb.format_size(mb.layer_bytes(n, width, copies))}, over the memory budget of "
            f"{mb.format_size(b)}; subsampling {len(keep)} rows (raise --max-memory to use them all)")
    return keep


def _evaluate(est, x: torch.Tensor, y: np.ndarray, split: Split, regression: bool) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for tr, te in split.folds:
        m = clone(est).fit(x[torch.as_tensor(tr)], y[tr])
        xt = x[torch.as_tensor(te)]
        if regression:  # R² and Spearman from the predictions, for any registered regression probe
            p = np.asarray(m.predict(xt), dtype=np.float64)
            p = p if p.ndim == 1 else p[:, 0]
            out.setdefault("r2", []).append(float(r2_score(y[te], p)))
            out.setdefault("spearman", []).append(float(spearman(p, y[te])))
        else:
            out.setdefault("accuracy", []).append(float(m.score(xt, y[te])))
    return out


RETRIEVAL_COPIES = 8.0  # float32 rows + unit-normalised copy + float64 re-rank blocks of the exact kNN


PROBE_COPIES = 6.0  # float32 layer + fold copies + a float64 fit copy + standardized/centred float64 work


def _stream_fit(est, store, layer: str, rows: np.ndarray, y: np.ndarray):
    """Fit a streamable probe (exactly a `RidgeProbe` or a `NaiveBayesProbe`) on sorted store `rows`, chunk by chunk
    (`fit_blocks`: sufficient statistics of the chunks, never the whole layer)."""
    from repscope.probe.naive_bayes import NaiveBayesProbe
    from repscope.probe.ridge import RidgeProbe
    from repscope.validation import classification_labels

    def chunks():
        return ((x, y[pos]) for pos, x in blocks(store, layer, rows))

    if type(est) is RidgeProbe:
        return clone(est).fit_blocks(chunks)
    if type(est) is NaiveBayesProbe:
        return clone(est).fit_blocks(chunks, classes=classification_labels(y)[0])
    return None


def streamable(est) -> bool:
    """Whether `layer_sweep` can fit this estimator from streamed sufficient statistics (ridge, naive Bayes, LDA)."""
    from repscope.probe.naive_bayes import NaiveBayesProbe
    from repscope.probe.ridge import RidgeProbe

    return type(est) in (RidgeProbe, NaiveBayesProbe)


def _evaluate_streaming(est, store, layer: str, rows_idx: np.ndarray, y: np.ndarray, split: Split,
                        regression: bool) -> dict[str, list[float]]:
    """`_evaluate` for a streamable probe: per fold, fit on the train rows and score the test rows chunk by chunk."""
    out: dict[str, list[float]] = {}
    for tr, te in split.folds:
        tr, te = np.sort(tr), np.sort(te)
        m = _stream_fit(est, store, layer, rows_idx[tr], y[tr])
        if regression:
            p = streaming_predict(m, store, layer, rows_idx[te]).astype(np.float64)
            out.setdefault("r2", []).append(float(r2_score(y[te], p)))
            out.setdefault("spearman", []).append(float(spearman(p, y[te])))
        else:
            out.setdefault("accuracy", []).append(streaming_score(m, store, layer, y[te], rows_idx[te]))
    return out


def _thin_split(split: Split, keep: np.ndarray) -> Split:
    """The same folds restricted to the sorted positions `keep`, re-indexed into `keep`."""
    folds = []
    for tr, te in split.folds:
        tr2 = np.searchsorted(keep, tr[np.isin(tr, keep)])
        te2 = np.searchsorted(keep, te[np.isin(te, keep)])
        if len(tr2) < 2 or len(te2) < 1:
            raise DataError(f"the memory budget leaves only {len(keep)} rows, too few for a train/test fold; "
                            "raise --max-memory")
        folds.append((tr2, te2))
    return Split(folds, split.mode)


def as_table(result: Result | pd.DataFrame) -> pd.DataFrame:
    """One row per estimate: store, model, layer, layer_index, analysis, metric, value, ci_low, ci_high, and every
    param as a column; the `<metric>_ci_low`/`_ci_high` rows of a Result are joined onto their estimate."""
    df = result.frame() if isinstance(result, Result) else result
    if df.empty:
        return pd.DataFrame(columns=["store", "layer", "metric", "value", "ci_low", "ci_high"])
    df = df.reset_index(drop=True)
    key = [json.dumps(p, sort_keys=True, default=str) for p in df["params"]]
    df = df.assign(_k=key, _m=df["metric"].str.replace(r"_ci_(low|high)$", "", regex=True))
    base = df[~df["metric"].str.endswith(("_ci_low", "_ci_high"))].copy()
    cols = ["analysis", "store", "layer", "_m", "_k"]
    for end in ("low", "high"):
        ci = df[df["metric"].str.endswith(f"_ci_{end}")][[*cols, "value"]].rename(columns={"value": f"ci_{end}"})
        base = base.merge(ci.drop_duplicates(cols), on=cols, how="left")
    params = pd.DataFrame([dict(p) for p in base["params"]], index=base.index)
    out = pd.concat([base.drop(columns=["_k", "_m", "params"]), params.drop(columns=[c for c in params
                                                                                      if c in base.columns])], axis=1)
    return out.reset_index(drop=True)


def layer_sweep(store, probes: str | Sequence[str] = ("logistic",), target: str = "label", layers: Any = None,
                cv: int | None = None, test_size: float = 0.25, seed: int = 0, device: str = "auto",
                probe_params: dict[str, dict[str, Any]] | None = None, level: float = 0.95,
                max_memory: int | str | None = None) -> Result:
    """Every layer × probe: score on held-out data (CV folds, the store's split column, or a stratified holdout).

    Returns analysis `probe` rows: metric accuracy (or r2 and spearman for a regression probe) = mean, with
    `<metric>_ci_low` and `<metric>_ci_high` (Student-t over CV folds, Wilson interval for a single test set);
    params probe, target, eval (cv, split or holdout). `as_table` turns them into one row per estimate.

    A layer is loaded only when `PROBE_COPIES` copies of it fit `max_memory` (bytes or e.g. "2GB"; None: 25% of
    the available RAM, see `repscope.budget`). Otherwise ridge, naive Bayes and LDA probes are fitted fold by fold
    from streamed sufficient statistics (same numbers; params streaming=true), and every other probe runs on a
    seeded subset of the rows that fit, the folds restricted to it (params rows_used, rows_total, subsampled=true).
    """
    names = PROBES.resolve_many(probes)  # "logistic" and ["logistic"] alike
    ests = {n: make_probe(n, device=device, **((probe_params or {}).get(n, {}))) for n in names}  # unfitted; cloned
    layer_list = pooled_layers(store, layers, "probing")
    rows_idx, y = target_values(store, target)
    budget = mb.resolve_budget(max_memory)
    chunk = int(store.manifest.get("chunk_rows", 1024))
    result = Result()
    splits: dict[bool, Split] = {}
    for layer in layer_list:
        width = mb.layer_width(store, layer)
        in_memory = mb.fits(len(rows_idx), width, budget, PROBE_COPIES)
        can_stream = mb.stream_fits(width, budget, chunk)
        x = _features(store, layer, rows_idx) if in_memory else None
        keep: np.ndarray | None = None
        if not in_memory:
            streamed = [n for n in names if can_stream and streamable(ests[n])]
            rest = [n for n in names if n not in streamed]
            if rest:
                keep = mb.fitting_rows(len(rows_idx), width, budget, PROBE_COPIES, seed)
                x = _features(store, layer, rows_idx[keep])  # only these rows are read
            need = mb.format_size(mb.layer_bytes(len(rows_idx), width, PROBE_COPIES))
            what = [f"streaming {', '.join(streamed)}"] if streamed else []
            what += [f"subsampling {len(keep)} of {len(rows_idx)} rows for {', '.join(rest)}"] if rest else []
            mb.warn(f"probe: layer '{layer}' needs ~{need}, over the memory budget of {mb.format_size(budget)}; "
                 f"{'; '.join(what)} (raise --max-memory to load it whole)")
        for name in names:
            regression = is_regression(name)
            if regression:
                try:
                    y_use = y.astype(np.float64)
                except (TypeError, ValueError):
                    raise DataError(f"regression probe '{name}' needs a numeric target; column '{target}' is not "
                                    "numeric") from None
            else:
                y_use = y
            if regression not in splits:
                splits[regression] = make_split(store.samples, y_use, rows_idx, cv, test_size, seed,
                                                classify=not regression)
            split = splits[regression]
            est = ests[name]
            extra: dict[str, Any] = {}
            t0 = time.perf_counter()
            if in_memory:
                scores = _evaluate(est, x, y_use, split, regression)
            elif can_stream and streamable(est):
                scores = _evaluate_streaming(est, store, layer, rows_idx, y_use, split, regression)
                extra = {"streaming": True}
            else:
                split = _thin_split(split, keep)
                scores = _evaluate(est, x, y_use[keep], split, regression)
                extra = {"rows_used": len(keep), "rows_total": len(rows_idx), "subsampled": True}
            secs = time.perf_counter() - t0
            n_test = int(sum(len(te) for _, te in split.folds))
            params = {"probe": name, "target": target, "eval": split.mode, "cv": cv or 0, "seed": seed,
                      "n_test": n_test, "level": level, **extra}
            for metric, vals in scores.items():
                if split.mode == "cv" or metric != "accuracy":
                    mean, lo, hi = mean_ci(vals, level)
                else:
                    mean = vals[0]
                    lo, hi = wilson_ci(mean, n_test, level)
                for mname, v in ((metric, mean), (f"{metric}_ci_low", lo), (f"{metric}_ci_high", hi)):
                    result.add("probe", mname, v, layer=layer, layer_index=layer_position(store, layer),
                               store=store.name, model=store.model, params=params, seconds=secs)
    return result


def few_shot_indices(y_pool: np.ndarray, shots: int, rng: np.random.Generator) -> np.ndarray:
    """`shots` random indices per class from y_pool (sorted), drawn with `rng`."""
    picks = [subset_rows(np.nonzero(y_pool == c)[0], shots, rng) for c in np.unique(y_pool)]
    return np.sort(np.concatenate(picks))


def few_shot_curve(store, layer: str, probes: str | Sequence[str] = ("logistic", "nb"), target: str = "label",
                   shots: Sequence[int] = (1, 2, 4, 8, 16, 32), seeds: int = 5, test_size: float = 0.25,
                   seed: int = 0, device: str = "auto", level: float = 0.95) -> Result:
    """Sample-efficiency curve: train on n labelled examples per class (n in `shots`), test on a fixed held-out set,
    repeated over `seeds` draws (seed, seed+1, …). Returns analysis `probe_few_shot` rows (metric accuracy, params
    shots/probe/target) with t-intervals over seeds. Same seeds → same numbers."""
    names = PROBES.resolve_many(probes)
    if any(is_regression(n) for n in names):
        raise ConfigError(f"few-shot curves are for classifier probes; drop {', '.join(filter(is_regression, names))}")
    (layer,) = pooled_layers(store, layer, "a few-shot curve")
    rows_idx, y = target_values(store, target)
    split = make_split(store.samples, y, rows_idx, None, test_size, seed)
    tr, te = split.folds[0]
    y_pool, y_test = y[tr], y[te]
    min_count = int(np.unique(y_pool, return_counts=True)[1].min())
    plan = {n: [few_shot_indices(y_pool, n, np.random.default_rng(seed + s)) for s in range(seeds)]
            for n in sorted({int(s) for s in shots}) if 1 <= n <= min_count}
    # read only the rows the curve uses (the test set and the drawn shots), not the whole layer
    used = np.unique(np.concatenate([tr[np.concatenate(d)] for d in plan.values()] + [te])) if plan else te
    x_used = _features(store, layer, rows_idx[used])
    x_test = x_used[torch.as_tensor(np.searchsorted(used, te))]
    width = x_used.shape[1]
    result = Result()
    for n, draws in plan.items():
        for name in names:
            accs = []
            t0 = time.perf_counter()
            for idx in draws:
                est = make_probe(name, device=device, **few_shot_params(name, n, width))
                est.fit(x_used[torch.as_tensor(np.searchsorted(used, tr[idx]))], y_pool[idx])
                accs.append(float(est.score(x_test, y_test)))
            mean, lo, hi = mean_ci(accs, level)
            secs = time.perf_counter() - t0
            params = {"probe": name, "target": target, "shots": n, "seeds": seeds, "seed": seed,
                      "n_test": len(te)}
            for mname, v in (("accuracy", mean), ("accuracy_ci_low", lo), ("accuracy_ci_high", hi)):
                result.add("probe_few_shot", mname, v, layer=layer, layer_index=layer_position(store, layer),
                           store=store.name, model=store.model, params=params, seconds=secs)
    if not result.rows:
        raise DataError(f"no shot count in {list(shots)} fits: the smallest class has {min_count} training samples")
    return result


def concept_depth(sweep: Result | pd.DataFrame, layers: Sequence[str], threshold: float = 0.9,
                  metric: str = "accuracy", chance: dict[str, float] | None = None,
                  model: str | None = None) -> Result:
    """Concept depth (Jin et al. 2024, "Exploring Concept Depth"): per (store, target, probe), the first layer in model
    order whose score ≥ threshold × best score. With `chance` {target: p0}, scores are first rescaled to
    (s − p0)/(1 − p0). `sweep` is a `layer_sweep` Result (or a table with store, target, probe, metric, layer,
    value). Returns analysis `concept_depth` rows: depth (index in `layers`), relative_depth (index/(L−1)),
    best (best score; params best_layer); `layer` is the depth layer."""
    if not 0 < threshold <= 1:
        raise ConfigError(f"threshold must be in (0, 1], got {threshold}")
    if isinstance(sweep, Result):
        sweep = as_table(sweep)
        model = model or next(iter(sweep["model"].dropna()), None)
    order = {name: i for i, name in enumerate(layers)}
    df = sweep[(sweep["metric"] == metric) & sweep["layer"].isin(order)]
    positions = dict(zip(df["layer"], df["layer_index"], strict=True)) if "layer_index" in df else {}
    result = Result()
    for (store, target, probe), g in df.groupby(["store", "target", "probe"], sort=True):
        g = g.assign(_i=g["layer"].map(order)).sort_values("_i")
        s = g["value"].to_numpy(dtype=np.float64)
        if chance and target in chance:
            p0 = chance[target]
            s = (s - p0) / max(1e-12, 1 - p0)
        best = float(s.max())
        first = int(np.nonzero(s >= threshold * best)[0][0])
        layer = str(g["layer"].iloc[first])
        idx = int(g["_i"].iloc[first])
        rel = idx / max(1, len(layers) - 1)
        params = {"target": target, "probe": probe, "threshold": threshold, "metric": metric,
                  "chance_adjusted": bool(chance and target in chance),
                  "best_layer": str(g["layer"].iloc[int(np.argmax(s))])}
        pos = positions.get(layer)
        for mname, v in (("depth", idx), ("relative_depth", rel), ("best", float(g["value"].max()))):
            result.add("concept_depth", mname, v, layer=layer, store=store, model=model, params=params,
                       layer_index=idx if pos is None or pos != pos else int(pos))
    return result


def concat_stores(stores: Sequence[Any], layer: str, probe: str = "logistic", target: str = "label",
                  cv: int | None = None, test_size: float = 0.25, seed: int = 0, device: str = "auto",
                  max_memory: int | str | None = None) -> Result:
    """Concatenate one layer of several stores of the same samples (e.g. seeds; Zhang & Bottou 2023, "Learning useful
    representations for shifting tasks and distributions") and probe it next to each store alone. Returns analysis
    `probe_concat` rows (store = member name or "a+b+…", metric accuracy with CI). When the members and their
    concatenation do not fit `max_memory`, a seeded subset of rows is used (params rows_used, rows_total)."""
    if len(stores) < 2:
        raise ConfigError("concatenation needs at least two stores")
    from repscope.store.pairing import check_all_paired

    ref = stores[0]
    pairing = check_all_paired(stores)  # row i of every store is the same sample (or an explicit opt-in)
    for s in stores[1:]:
        if layer not in s.layers:
            raise DataError(f"layer '{layer}' missing from store '{s.name}'; available: {format_choices(s.layers)}")
        pooled_layers(s, layer, "probe concatenation")
    name = canonical(probe)
    if is_regression(name):
        raise ConfigError(f"probe concatenation reports accuracy; '{name}' is a regression probe, pick a classifier")
    rows_idx, y = target_values(ref, target)
    width = sum(mb.layer_width(s, layer) for s in stores)
    keep = budget_positions(len(rows_idx), 2 * width, max_memory, PROBE_COPIES, seed, "probe concat")
    extra = {}
    if keep is not None:
        extra = {"rows_used": len(keep), "rows_total": len(rows_idx), "subsampled": True}
        rows_idx, y = rows_idx[keep], y[keep]
    split = make_split(ref.samples, y, rows_idx, cv, test_size, seed)
    feats = {s.name: _features(s, layer, rows_idx) for s in stores}
    feats["+".join(s.name for s in stores)] = torch.cat(list(feats.values()), dim=1)
    result = Result()
    for sname, x in feats.items():
        t0 = time.perf_counter()
        vals = _evaluate(make_probe(name, device=device), x, y, split, False)["accuracy"]
        if split.mode == "cv":
            mean, lo, hi = mean_ci(vals)
        else:
            mean = vals[0]
            lo, hi = wilson_ci(mean, len(split.folds[0][1]))
        secs = time.perf_counter() - t0
        members = sname.count("+") + 1
        params = {"probe": name, "target": target, "members": members, "eval": split.mode, "seed": seed, **extra,
                  **pairing}
        for mname, v in (("accuracy", mean), ("accuracy_ci_low", lo), ("accuracy_ci_high", hi)):
            result.add("probe_concat", mname, v, layer=layer, layer_index=layer_position(ref, layer), store=sname,
                       model=ref.model, params=params, seconds=secs)
    return result


def retrieval_sweep(store, target: str = "label", layers: Any = None, ks: Sequence[int] = (1, 5, 10),
                    metric: str = "cosine", device: str = "auto", max_memory: int | str | None = None,
                    seed: int = 0) -> Result:
    """Per layer, leave-one-out label retrieval (recall@k, mAP, nDCG@10; see `retrieval_metrics`). Returns analysis
    `retrieval` rows. A layer over `max_memory` is scored on a seeded subset of rows (params rows_used, rows_total):
    queries and gallery are then both that subset."""
    rows_all, y_all = target_values(store, target)
    result = Result()
    for layer in pooled_layers(store, layers, "retrieval"):
        t0 = time.perf_counter()
        keep = budget_positions(len(rows_all), mb.layer_width(store, layer), max_memory, RETRIEVAL_COPIES, seed,
                                f"retrieval on layer '{layer}'")
        rows_idx, y = (rows_all, y_all) if keep is None else (rows_all[keep], y_all[keep])
        res = retrieval_metrics(_features(store, layer, rows_idx), y, ks, metric, device=device)
        secs = time.perf_counter() - t0
        params = {"target": target, "distance": metric}
        if keep is not None:
            params.update(rows_used=len(keep), rows_total=len(rows_all), subsampled=True)
        for k, v in res.items():
            result.add("retrieval", k, v, layer=layer, layer_index=layer_position(store, layer), store=store.name,
                       model=store.model, params=params, seconds=secs)
    return result


def sts_pairs(samples: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rows of side 0, rows of side 1, gold score) for each complete pair in a store's samples table."""
    need = {"pair", "side", "score"}
    if not need <= set(samples.columns):
        raise DataError(f"STS needs sample columns pair, side, score; found {format_choices(list(samples.columns))}")
    df = pd.DataFrame({"pair": samples["pair"].to_numpy(), "side": samples["side"].astype(int).to_numpy(),
                       "score": samples["score"].to_numpy(dtype=np.float64), "row": np.arange(len(samples))})
    a = df[df["side"] == 0].drop_duplicates("pair").set_index("pair")
    b = df[df["side"] == 1].drop_duplicates("pair").set_index("pair")
    common = a.index.intersection(b.index)
    if len(common) < 3:
        raise DataError("fewer than 3 complete (side 0, side 1) pairs; check the pair and side columns")
    a, b = a.loc[common], b.loc[common]
    return a["row"].to_numpy().copy(), b["row"].to_numpy().copy(), a["score"].to_numpy().copy()


def sts_sweep(store, layers: Any = None, max_memory: int | str | None = None, seed: int = 0) -> Result:
    """Per layer, Spearman ρ between cos(side 0, side 1) and the gold score over all pairs. Returns analysis `sts`
    rows (metric spearman; params n_pairs). Only the two sides of the pairs are read; when they do not fit
    `max_memory`, a seeded subset of pairs is scored (params pairs_total, subsampled)."""
    ra_all, rb_all, gold_all = sts_pairs(store.samples)
    result = Result()
    for layer in pooled_layers(store, layers, "STS"):
        t0 = time.perf_counter()
        keep = budget_positions(len(gold_all), 2 * mb.layer_width(store, layer), max_memory, 2.0, seed,
                                f"STS on layer '{layer}'")
        ra, rb, gold = (ra_all, rb_all, gold_all) if keep is None else (ra_all[keep], rb_all[keep], gold_all[keep])
        xa = store.get(layer, ra, dtype=torch.float32)
        xb = store.get(layer, rb, dtype=torch.float32)
        rho = sts_spearman(xa.reshape(len(ra), -1).numpy(), xb.reshape(len(rb), -1).numpy(), gold)
        secs = time.perf_counter() - t0
        params: dict[str, Any] = {"n_pairs": len(gold)}
        if keep is not None:
            params.update(pairs_total=len(gold_all), subsampled=True)
        result.add("sts", "spearman", rho, layer=layer, layer_index=layer_position(store, layer), store=store.name,
                   model=store.model, params=params, seconds=secs)
    return result


__all__ = ["make_probe", "canonical", "make_split", "layer_sweep", "few_shot_curve", "concept_depth",
           "concat_stores", "retrieval_sweep", "sts_sweep", "sts_pairs", "spearman"]
__all__ += ["as_table", "layer_position"]

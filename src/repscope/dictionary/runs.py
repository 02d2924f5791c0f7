"""Drivers shared by the CLI, studies and the demo: train an SAE or a quantizer on a store layer, evaluate on
held-out rows, inspect features; each returns a `Result` (tidy rows + feature-card artifacts) the caller records."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from repscope.dictionary import metrics as M
from repscope.dictionary.inspect import (
    feature_cards,
    inspect_features,
    label_columns,
    label_token_items,
    token_sample_positions,
)
from repscope.dictionary.quantize import make_quantizer
from repscope.dictionary.sae import SAE, Transcoder
from repscope.dictionary.stream import StoreSource
from repscope.errors import ConfigError, DataError, check_choice
from repscope.results import Result
from repscope.selection import subset_rows
from repscope.store.repstore import layer_position

MAX_ROWS = 20000
DEAD_ROWS = ("eval", "all")  # rows the dead/dense latent fractions are measured on (train_sae_on_store)


@dataclass
class SaeResult(Result):
    """`Result` of `train_sae_on_store` (rows of analysis 'sae' + the feature-card artifact), with the fitted
    estimator, the metrics and params as recorded, and the inspected features for direct use."""

    estimator: Any = None
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    features: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class QuantizeResult(Result):
    """`Result` of `quantize_store` (rows of analysis 'quantize'), with the fitted quantizer, metrics and params."""

    quantizer: Any = None
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)


def check_run_params(holdout_every: int, batch_size: int | None = None, bits: int | None = None) -> None:
    """One-line errors for run options before any work: --holdout is 0 (none) or N ≥ 2, --batch-size and --bits ≥ 1."""
    if holdout_every < 0 or holdout_every == 1:
        raise ConfigError(f"--holdout {holdout_every}: use 0 (no holdout) or N >= 2 (hold out every N-th row)")
    if batch_size is not None and batch_size < 1:
        raise ConfigError(f"--batch-size {batch_size}: the batch size must be >= 1 (e.g. 4096)")
    if bits is not None and bits < 1:
        raise ConfigError(f"--bits {bits}: the bit budget per vector must be >= 1 (e.g. 64)")


def holdout_rows(n: int, holdout_every: int) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, held-out rows): every `holdout_every`-th row (idx % h == h−1) is held out; all rows if h < 2."""
    idx = np.arange(n)
    if holdout_every < 2:
        return idx, idx
    mask = idx % holdout_every == holdout_every - 1
    return idx[~mask], idx[mask]


def pick_target(store: Any, target: str | None) -> str | None:
    """The sample column to probe with: `target` when given, else `label`, else the first factor-like column."""
    if target:
        store.labels(target)  # raises with the available columns
        return target
    if "label" in store.samples.columns and store.samples["label"].nunique() >= 2:
        return "label"
    cols = label_columns(store.samples)
    return cols[0] if cols else None


def probe_drop(store: Any, layer: str, target: str, train_rows: np.ndarray, test_rows: np.ndarray,
               recon: Any) -> dict[str, float]:
    """Probe-after-reconstruction on a store, predicting sample column `target`: train on original train rows, test
    on held-out originals vs `recon`."""
    y = store.labels(target)
    tr, te = subset_rows(train_rows, 5000), subset_rows(test_rows, 5000, 1)
    x_tr = store.get(layer, tr, dtype=torch.float32)
    x_te = store.get(layer, te, dtype=torch.float32)
    return M.probe_after_reconstruction(x_tr, y[tr], x_te, y[te], recon(x_te))


def train_sae_on_store(store: Any, layer: str, *, arch: str = "topk", k: int | None = 32, expansion: float = 16.0,
                       n_latents: int | None = None, l1_coeff: float = 1.0, n_epochs: float = 10.0,
                       n_steps: int | None = None, batch_size: int = 4096, lr: float | None = None,
                       holdout_every: int = 10, seed: int = 0, device: str = "auto", out: str | Path | None = None,
                       resume: bool = True, progress: bool = False, target_layer: str | None = None,
                       target: str | None = None, n_cards: int = 12, checkpoint_every: int = 200,
                       dead_rows: str = "eval") -> SaeResult:
    """Train an SAE (or transcoder) on a store layer, evaluate on held-out rows; returns metrics (analysis 'sae' rows)
    and the feature cards (artifact) as a `SaeResult`.

    FVU, MSE and L0 are measured on the held-out rows; so are the dead and dense latent fractions by default
    (`dead_rows="eval"`, SAELens/SAEBench's convention: every metric on the same evaluation tokens);
    `dead_rows="all"` measures those two on every row (up to `MAX_ROWS` evenly spaced ones), which counts fewer
    latents dead. The choice is recorded in params["dead_rows"].

    Token-level layers train on token rows (all, or `stream.MAX_TOKEN_ROWS` evenly spaced ones), hold out every
    `holdout_every`-th token row, and skip probe-after-reconstruction (labels are per sample); feature cards show
    each top token in its sentence, and label AUROCs give every token its sample's label. `target` is the sample
    column of probe-after-reconstruction (`pick_target`; recorded as params["probe_label"])."""
    check_run_params(holdout_every, batch_size=batch_size)
    check_choice(dead_rows, DEAD_ROWS, "dead_rows")
    target = pick_target(store, target) if not target_layer else None  # a missing column fails before training
    est_cls = Transcoder if target_layer else SAE
    est = est_cls(arch=arch, k=k, expansion=expansion, n_latents=n_latents, l1_coeff=l1_coeff, n_epochs=n_epochs,
                  n_steps=n_steps, batch_size=batch_size, lr=lr, holdout_every=holdout_every, seed=seed,
                  device=device, checkpoint_dir=out, checkpoint_every=checkpoint_every if out else 0,
                  resume=resume, progress=progress)
    t0 = time.perf_counter()
    est.fit(store, layer=layer, target_layer=target_layer)
    train_s = time.perf_counter() - t0
    tokens = store.is_tokens(layer)
    n_src = StoreSource(store, layer).n_rows if tokens else store.n_rows
    train_rows, test_rows = holdout_rows(n_src, holdout_every)
    ev = est.evaluate_store(store, layer, target_layer, rows=None if holdout_every < 2 else test_rows)
    metrics = {**ev, "train_seconds": train_s}
    if est.steps_run_ > 0:  # 0 when a finished checkpoint was reloaded
        metrics["samples_per_s"] = est.steps_run_ * est.batch_size / max(est.fit_seconds_, 1e-9)
    if target is not None and holdout_every >= 2 and not tokens:
        try:
            metrics.update(probe_drop(store, layer, target, train_rows, test_rows, est.reconstruct))
        except DataError:
            pass
    mod = est.module_
    params = {"arch": arch, "k": mod.k, "n_latents": mod.n_latents, "expansion": round(mod.n_latents / mod.d_in, 3),
              "steps": est.n_steps_, "batch_size": est.batch_size, "eval": "holdout" if holdout_every >= 2 else "train",
              "probe_label": target if not tokens else None, "target_layer": target_layer, "dead_rows": dead_rows}
    if tokens:
        params["token_level"] = True
    rows, z = encode_store(est, store, layer)
    if dead_rows == "all":  # firing frequencies over every row read for the feature cards, not the held-out rows
        metrics["dead_fraction"] = M.dead_fraction(z)
        metrics["dense_fraction"] = M.dense_fraction(z)
    features = describe_features(store, layer, rows, z, n_features=n_cards)
    if out is not None:
        est.save(out, metrics=metrics, params=params)
    result = SaeResult(estimator=est, metrics=metrics, params=params, features=features)
    for k, v in metrics.items():
        result.add("sae", k, float(v), layer=layer, layer_index=layer_position(store, layer), store=store.name,
                   model=store.model, params=params, seconds=train_s)
    return result.extend(card_result(store, layer, params, features))


def encode_store(est: SAE, store: Any, layer: str, max_rows: int = MAX_ROWS) -> tuple[np.ndarray, torch.Tensor]:
    """Latent codes for up to `max_rows` rows of a store layer (evenly spaced when the store is larger).

    Returns (rows, z): sample rows for pooled layers, flat token rows (indices into the token array) for
    token-level layers."""
    src = StoreSource(store, layer)
    n = src.n_rows
    pick = np.arange(n) if n <= max_rows else np.linspace(0, n - 1, max_rows).round().astype(int)
    x = src.read_rows(pick)
    rows = src.token_rows[pick] if src.token_rows is not None else pick
    return rows, est.transform(x)


def describe_features(store: Any, layer: str, rows: np.ndarray, z: torch.Tensor, n_features: int = 12,
                      top_n: int = 6, targets: list[str] | None = None) -> list[dict[str, Any]]:
    """`inspect_features` on codes from `encode_store`, with texts and labels from `store.samples`.

    For token-level layers every top item is a token: `row`/`sample`, `position`, and (text models whose tokenizer
    loads offline from provenance `model_spec`) `token` plus its context as `text`; AUROC uses the sample's label."""
    if not store.is_tokens(layer):
        return inspect_features(z, store.samples, targets=targets, n_features=n_features, top_n=top_n,
                                row_ids=rows)
    from repscope.sources.load import load_tokenizer

    off = store.offsets(layer)
    sample, position = token_sample_positions(off, rows)
    tok_samples = store.samples.iloc[sample].reset_index(drop=True)
    feats = inspect_features(z, tok_samples, targets=targets, n_features=n_features, top_n=top_n)
    prov = store.provenance
    tokenizer = load_tokenizer(prov.get("model_spec")) if any(f["top"] for f in feats) else None
    label_token_items(feats, sample, position, rows, off, store.samples, tokenizer=tokenizer,
                      max_length=prov.get("max_length"))
    return feats


def inspect_store_features(est: SAE, store: Any, layer: str, n_features: int = 12, top_n: int = 6,
                           targets: list[str] | None = None) -> list[dict[str, Any]]:
    """`inspect_features` over a store layer (pooled or token-level), with texts and labels from `store.samples`."""
    rows, z = encode_store(est, store, layer)
    return describe_features(store, layer, rows, z, n_features=n_features, top_n=top_n, targets=targets)


def card_images(store: Any) -> np.ndarray | None:
    """The store's source images (one per sample) when its dataset is an image set that re-reads from provenance
    `dataset_spec` with an unchanged content hash; None otherwise (text or array data, moved or changed file)."""
    if "image_index" not in store.samples.columns:
        return None
    from repscope.sources.load import reload_dataset

    ds = reload_dataset(store.provenance)
    if ds is None or ds.modality != "image" or len(ds) != store.n_samples:
        return None
    x = getattr(ds, "x", None)
    return None if x is None else np.asarray(x)


def store_cards(store: Any, features: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Feature cards for a store's features, with image thumbnails when `card_images` finds the source images."""
    return feature_cards(features, images=card_images(store) if any(f["top"] for f in features) else None)


def card_result(store: Any, layer: str, params: dict[str, Any], features: list[dict[str, Any]]) -> Result:
    """The feature cards of one SAE (`params` holds arch, k, n_latents) as a `Result` with one 'sae' artifact."""
    name = f"cards/{store.name}/{layer}/{params['arch']}-k{params['k']}-m{params['n_latents']}"
    result = Result()
    result.add_artifact("sae", name, {"store": store.name, "layer": layer, "params": params,
                                      "features": features, "cards": store_cards(store, features)})
    return result


QUANTIZE_MAX_ROWS = 200_000  # rows a quantizer is fit on, and evaluated on (seeded subsets, counts in params)


def quantize_store(store: Any, layer: str, method: str = "pq", bits: int | None = 64, holdout_every: int = 10,
                   seed: int = 0, device: str = "auto", target: str | None = None) -> QuantizeResult:
    """Fit a quantizer on a store layer's training rows, evaluate on held-out rows; returns the metrics as analysis
    'quantize' rows (`QuantizeResult`, with the fitted quantizer). `target` is the sample column of
    probe-after-reconstruction (`pick_target`; recorded as params["probe_label"])."""
    check_run_params(holdout_every, bits=bits)
    info = store.layer_info(layer)
    if info.get("tokens") or len(info["shape"]) != 1:
        raise DataError(f"layer '{layer}' is not a pooled vector layer; quantize a pooled layer")
    d = int(info["shape"][0])
    target = pick_target(store, target)  # a missing column fails before fitting
    train_rows, test_rows = holdout_rows(store.n_rows, holdout_every)
    q = make_quantizer(method, bits=bits, dim=d, seed=seed, device=device)
    t0 = time.perf_counter()
    fit_rows = subset_rows(train_rows, QUANTIZE_MAX_ROWS)
    q.fit(store.get(layer, fit_rows, dtype=torch.float32))
    secs = time.perf_counter() - t0
    eval_rows = subset_rows(test_rows, QUANTIZE_MAX_ROWS, 1)  # never the whole held-out split of a huge store
    metrics = q.evaluate(store.get(layer, eval_rows, dtype=torch.float32))
    if target is not None and holdout_every >= 2:
        try:
            metrics.update(probe_drop(store, layer, target, train_rows, test_rows, q.transform))
        except DataError:
            pass
    params = {"method": method, "bits": bits, "eval": "holdout" if holdout_every >= 2 else "train",
              "probe_label": target, "n_fit": len(fit_rows), "n_eval": len(eval_rows)}
    result = QuantizeResult(quantizer=q, metrics=metrics, params=params)
    for k, v in metrics.items():
        result.add("quantize", k, float(v), layer=layer, layer_index=layer_position(store, layer), store=store.name,
                   model=store.model, params=params, seconds=secs)
    return result


def check_arch(arch: str, k: int | None) -> None:
    """CLI-level validation of arch/k combinations."""
    from repscope.dictionary.modules import ARCHS

    if arch not in ARCHS:
        raise ConfigError(f"unknown --arch '{arch}'; choose one of {', '.join(ARCHS)}")
    if ARCHS.metadata(arch).get("needs_k") and (k is None or k < 1):
        raise ConfigError(f"--arch {arch} needs --k >= 1")

"""Shared evaluation plumbing of repscope.compress: fit/eval rows, and the scores of one embedding variant.

Every score comes from its one home: `LogisticProbe` (probe accuracy), `retrieval_metrics` (label recall@k, mAP) and
`sts_spearman` (STS Spearman, as `sts_sweep` computes it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from repscope.errors import DataError, format_choices
from repscope.selection import subset_rows

EVAL_SPLITS = ("test", "dev", "validation", "val")


@dataclass
class EvalPlan:
    """Rows to fit on (PCA, adapters, probes, int8 calibration) and rows to score on, with the targets they need."""

    fit: np.ndarray
    eval: np.ndarray
    mode: str  # split (the store's split column), pairs (seeded half of the STS pairs) or holdout (seeded half)
    y_fit: np.ndarray | None = None
    y_eval: np.ndarray | None = None
    pair_a: np.ndarray | None = None  # positions into `eval` of side 0 / side 1 of each eval pair
    pair_b: np.ndarray | None = None
    gold: np.ndarray | None = None


def _numeric_scores(samples: pd.DataFrame) -> np.ndarray:
    try:
        return pd.to_numeric(samples["score"]).to_numpy(dtype=np.float64)
    except (ValueError, TypeError):
        bad = next(v for v in samples["score"] if pd.isna(pd.to_numeric(v, errors="coerce")))
        raise DataError(f"STS score '{bad}' is not a number; the 'score' column must be numeric") from None


def is_pair_store(samples: pd.DataFrame) -> bool:
    """True when the samples table has STS pair columns (pair, side, score)."""
    return {"pair", "side", "score"} <= set(samples.columns)


def eval_plan(samples: pd.DataFrame, n: int, *, target: str | None = None, seed: int = 0,
              fit_fraction: float = 0.5, max_rows: int | None = None) -> EvalPlan:
    """Fit rows = the `split == train` rows, else a seeded `fit_fraction` of the STS pairs (both sides together),
    else a seeded `fit_fraction` of the rows; eval rows are the rest (test/dev split rows when there is a split).
    `max_rows` caps the fit and the eval rows each by a seeded subsample (not for STS pair stores)."""
    samples = samples.iloc[:n]
    pairs = is_pair_store(samples)
    all_gold = _numeric_scores(samples) if pairs else None  # a bad score fails before any work
    if target is not None and target not in samples.columns:
        raise DataError(f"target column '{target}' not in samples; available: "
                        f"{format_choices([c for c in samples.columns if c not in ('id', 'text')])}")
    rng = np.random.default_rng(seed)
    fit = ev = None
    mode = "holdout"
    if "split" in samples.columns:
        sp = samples["split"].astype(str).str.lower().to_numpy()
        tr = np.nonzero(sp == "train")[0]
        for name in EVAL_SPLITS:
            te = np.nonzero(sp == name)[0]
            if len(tr) and len(te):
                fit, ev, mode = tr, te, "split"
                break
    if fit is None and pairs:
        ids = samples["pair"].to_numpy()
        uniq = np.unique(ids)
        chosen = rng.random(len(uniq)) < fit_fraction
        in_fit = np.isin(ids, uniq[chosen])
        fit, ev, mode = np.nonzero(in_fit)[0], np.nonzero(~in_fit)[0], "pairs"
    if fit is None:
        perm = rng.permutation(n)
        k = int(round(n * fit_fraction))
        fit, ev = np.sort(perm[:k]), np.sort(perm[k:])
    if not pairs:
        fit, ev = subset_rows(fit, max_rows, rng), subset_rows(ev, max_rows, rng)
    if len(fit) < 2 or len(ev) < 2:
        raise DataError(f"{n} rows give {len(fit)} fit and {len(ev)} eval rows; need at least 2 of each")
    plan = EvalPlan(fit=fit, eval=ev, mode=mode)
    if target is not None:
        y = samples[target].to_numpy()
        plan.y_fit, plan.y_eval = y[fit], y[ev]
    if pairs:
        sub = samples.iloc[ev]
        gold = all_gold[ev]
        df = pd.DataFrame({"pair": sub["pair"].to_numpy(), "side": sub["side"].astype(int).to_numpy(),
                           "score": gold, "pos": np.arange(len(ev))})
        a = df[df["side"] == 0].drop_duplicates("pair").set_index("pair")
        b = df[df["side"] == 1].drop_duplicates("pair").set_index("pair")
        common = a.index.intersection(b.index)
        if len(common) >= 3:
            plan.pair_a = np.array(a.loc[common, "pos"].to_numpy(), dtype=np.int64)
            plan.pair_b = np.array(b.loc[common, "pos"].to_numpy(), dtype=np.int64)
            plan.gold = a.loc[common, "score"].to_numpy()
    return plan


DEFAULT_TARGET = "label"


def resolve_target(store: Any, target: str | None, *, needed_for: str | None = None) -> str | None:
    """The label column to score with. The default `label` is optional: a store without it (STS pairs, template
    sentences) gives None, and the label metrics are skipped. Any other missing column, or no label at all where
    `needed_for` (e.g. "the supervised adapter") requires one, is a one-line DataError naming the columns."""
    cols = list(store.samples.columns)
    if target is not None and (target in cols or target != DEFAULT_TARGET):
        if target not in cols:
            raise DataError(f"target column '{target}' not in samples of store '{store.name}'; available: "
                            f"{format_choices(label_columns(cols))}")
        return target
    if needed_for is not None:
        raise DataError(f"{needed_for} needs a label column and store '{store.name}' has no '{DEFAULT_TARGET}'; "
                        f"pass --target COLUMN, one of {format_choices(label_columns(cols))}")
    return None


def label_columns(columns: Sequence[str]) -> list[str]:
    """Sample columns that can serve as a target (everything but the id and the text)."""
    return [c for c in columns if c not in ("id", "text")]


def variant_scores(z_fit: torch.Tensor, z_eval: torch.Tensor, plan: EvalPlan, *, ks: Sequence[int] = (10,),
                   probe: bool = True, retrieval: bool = True, device: str = "auto") -> dict[str, float]:
    """Scores of one embedding variant: `accuracy` (LogisticProbe fit on the fit rows, scored on the eval rows),
    `recall@k` and `mAP` (leave-one-out label retrieval among the eval rows), `spearman` (STS pairs among them)."""
    from repscope.kernels.logistic import LogisticProbe
    from repscope.kernels.metrics import sts_spearman
    from repscope.kernels.retrieval import retrieval_metrics

    out: dict[str, float] = {}
    if plan.y_fit is not None and plan.y_eval is not None:
        if probe and len(np.unique(plan.y_fit)) >= 2:
            est = LogisticProbe(device=device).fit(z_fit, plan.y_fit)
            out["accuracy"] = float(est.score(z_eval, plan.y_eval))
        if retrieval:
            r = retrieval_metrics(z_eval, plan.y_eval, ks=ks, device=device)
            out.update({k: float(v) for k, v in r.items() if k.startswith("recall@") or k == "mAP"})
    if plan.gold is not None:
        za = z_eval[torch.as_tensor(plan.pair_a)].double().numpy()
        zb = z_eval[torch.as_tensor(plan.pair_b)].double().numpy()
        out["spearman"] = float(sts_spearman(za, zb, plan.gold))
    return out


def as_matrix(x: Any) -> torch.Tensor:
    """A float32 (n, d) CPU tensor from an array or tensor (rows flattened)."""
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    return t.reshape(t.shape[0], -1).to(torch.float32)


def load_rows(store: Any, layer: str, plan: EvalPlan) -> tuple[torch.Tensor, EvalPlan]:
    """Only the fit and eval rows of a pooled layer (float32, flattened), and the plan re-indexed into them."""
    from dataclasses import replace

    rows = np.union1d(plan.fit, plan.eval)
    x = store.get(layer, rows if len(rows) < store.n_rows else None, dtype=torch.float32)
    x = x.reshape(x.shape[0], -1)
    return x, replace(plan, fit=np.searchsorted(rows, plan.fit), eval=np.searchsorted(rows, plan.eval))

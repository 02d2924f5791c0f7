"""The β-VAE score (Higgins et al. 2017) and the FactorVAE score (Kim & Mnih 2018), with fixed-factor batches drawn
from the samples themselves (no generator): a batch that fixes factor j to a value is a set of rows sharing it.

Row pools (`batch_pool`): disentanglement_lib draws training and evaluation batches from one source, a generator that
renders fresh observations, so the two sets of batches share no observation. A store is a finite sample, so by default
(`"split"`) the classifier's training batches come from the training rows of a seeded split and the evaluation
batches from the held-out rows (FactorVAE's global variances from the training rows): the score is measured on rows
the classifier never saw. `"shared"` draws both from all rows (and FactorVAE's variances too), disentanglement_lib's
one-source recipe applied to a finite sample: evaluation batches then reuse training rows, but every group of rows
sharing a factor value is larger, which on small stores can change the score a lot (FactorVAE 0.43 vs 0.64 on a
600-row store)."""

from __future__ import annotations

from typing import Any

import numpy as np

from repscope.disentangle.inputs import as_latents, encode_factors, split_indices, standardize_by_train
from repscope.errors import ConfigError
from repscope.threads import limit_threads

BATCH_POOLS = ("split", "shared")


def _pools(n: int, batch_pool: str, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, evaluation rows) of the batches: a seeded split, or all rows twice (`"shared"`)."""
    if batch_pool == "split":
        return split_indices(n, test_fraction=test_fraction, seed=seed)
    if batch_pool == "shared":
        return np.arange(n), np.arange(n)
    raise ConfigError(f"unknown batch pool '{batch_pool}'; choose one of {', '.join(BATCH_POOLS)}")


class _Groups:
    """Rows of a pool grouped by the value of each factor, for O(1) draws of 'another row with the same value'."""

    def __init__(self, codes: np.ndarray, rows: np.ndarray):
        self.rows = rows
        self.order, self.start, self.count, self.group_of = [], [], [], []
        for j in range(codes.shape[1]):
            v = codes[rows, j]
            order = np.argsort(v, kind="stable")
            uniq, start, count = np.unique(v[order], return_index=True, return_counts=True)
            self.order.append(rows[order])
            self.start.append(start)
            self.count.append(count)
            self.group_of.append(np.searchsorted(uniq, v))  # group index of each pool position

    def same_value(self, j: int, anchors: np.ndarray, size: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        """Rows drawn uniformly (with replacement) among pool rows whose factor j equals that of each anchor
        (anchors are pool positions); output shape `anchors.shape + size`."""
        g = self.group_of[j][anchors]
        g = g.reshape(g.shape + (1,) * len(size))
        u = rng.random(anchors.shape + size)
        return self.order[j][self.start[j][g] + np.floor(u * self.count[j][g]).astype(np.int64)]


def _beta_vae_points(x: np.ndarray, groups: _Groups, k: int, n_points: int, batch_size: int,
                     rng: np.random.Generator, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.integers(0, k, size=n_points)
    feats = np.empty((n_points, x.shape[1]))
    n_pool = len(groups.rows)
    for s in range(0, n_points, chunk):
        lab = labels[s : s + chunk]
        anchors = rng.integers(0, n_pool, size=(len(lab), batch_size))
        partners = np.empty_like(anchors)
        for j in np.unique(lab):
            m = lab == j
            partners[m] = groups.same_value(int(j), anchors[m], (), rng)
        feats[s : s + chunk] = np.abs(x[groups.rows[anchors]] - x[partners]).mean(axis=1)
    return feats, labels


def beta_vae_score(latents: Any, factors: Any, *, batch_size: int = 64, n_train: int = 10000, n_eval: int = 5000,
                   test_fraction: float = 1 / 3, seed: int = 0, batch_pool: str = "split") -> dict[str, float]:
    """β-VAE score (Higgins et al. 2017): accuracy on evaluation batches of a logistic regression predicting which
    factor a batch fixes from mean_b |z(a_b) − z(b_b)| over `batch_size` pairs sharing that factor's value; chance is
    1/k. `batch_pool`: "split" (default, held-out evaluation rows) or "shared" (disentanglement_lib's one source)."""
    from sklearn.linear_model import LogisticRegression

    x = as_latents(latents)
    v, _ = encode_factors(factors, n_rows=len(x))
    tr, te = _pools(len(x), batch_pool, test_fraction, seed)
    rng = np.random.default_rng(seed)
    k = v.shape[1]
    f_tr, y_tr = _beta_vae_points(x, _Groups(v, tr), k, n_train, batch_size, rng)
    f_te, y_te = _beta_vae_points(x, _Groups(v, te), k, n_eval, batch_size, rng)
    if k == 1:
        return {"train_accuracy": 1.0, "eval_accuracy": 1.0}
    f_tr, f_te = standardize_by_train(f_tr, f_te)
    with limit_threads(1):
        m = LogisticRegression(max_iter=1000).fit(f_tr, y_tr)
        return {"train_accuracy": float(m.score(f_tr, y_tr)), "eval_accuracy": float(m.score(f_te, y_te))}


def _factor_vae_votes(x: np.ndarray, groups: _Groups, k: int, global_var: np.ndarray, active: np.ndarray,
                      n_votes: int, batch_size: int, rng: np.random.Generator, chunk: int = 256) -> np.ndarray:
    votes = np.zeros((int(active.sum()), k), dtype=np.int64)
    xa = x[:, active] / np.sqrt(global_var[active])
    n_pool = len(groups.rows)
    labels = rng.integers(0, k, size=n_votes)
    for s in range(0, n_votes, chunk):
        lab = labels[s : s + chunk]
        anchors = rng.integers(0, n_pool, size=len(lab))
        batch = np.empty((len(lab), batch_size), dtype=np.int64)
        for j in np.unique(lab):
            m = lab == j
            batch[m] = groups.same_value(int(j), anchors[m], (batch_size,), rng)
        local = xa[batch].var(axis=1, ddof=1)  # variance of z/σ = local var / global var
        np.add.at(votes, (np.argmin(local, axis=1), lab), 1)
    return votes


def factor_vae_score(latents: Any, factors: Any, *, batch_size: int = 64, n_train: int = 10000, n_eval: int = 5000,
                     prune_threshold: float = 0.05, test_fraction: float = 1 / 3, seed: int = 0,
                     batch_pool: str = "split") -> dict[str, float]:
    """FactorVAE score (Kim & Mnih 2018): accuracy of the majority-vote classifier from argmin_i Var_batch(z_i)/Var(z_i)
    (active latents, std ≥ `prune_threshold`) to the factor the batch fixes; 0 when no latent is active.
    `batch_pool`: "split" (default, held-out evaluation rows) or "shared" (disentanglement_lib's one source)."""
    x = as_latents(latents)
    v, _ = encode_factors(factors, n_rows=len(x))
    tr, te = _pools(len(x), batch_pool, test_fraction, seed)
    rng = np.random.default_rng(seed)
    k = v.shape[1]
    global_var = x[tr].var(axis=0, ddof=1)
    active = np.sqrt(global_var) >= prune_threshold
    if not active.any():
        return {"train_accuracy": 0.0, "eval_accuracy": 0.0, "active_latents": 0}
    train_votes = _factor_vae_votes(x, _Groups(v, tr), k, global_var, active, n_train, batch_size, rng)
    eval_votes = _factor_vae_votes(x, _Groups(v, te), k, global_var, active, n_eval, batch_size, rng)
    clf = np.argmax(train_votes, axis=1)
    rows = np.arange(len(clf))
    return {"train_accuracy": float(train_votes[rows, clf].sum() / train_votes.sum()),
            "eval_accuracy": float(eval_votes[rows, clf].sum() / eval_votes.sum()),
            "active_latents": int(active.sum())}

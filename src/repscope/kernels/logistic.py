"""The one linear readout: multinomial L2 logistic-regression probe, full-batch L-BFGS in torch (linear evaluation of
frozen features). Every "probe accuracy" in repscope (probe sweeps, transfer readouts, compression, compatibility,
learners) is this estimator's."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from repscope.errors import ConfigError
from repscope.kernels.estimator import ProbeClassifier, Standardizer, cpu_threads_for

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _dtype(name: str) -> torch.dtype:
    if name not in _DTYPES:
        raise ConfigError(f"dtype '{name}' not supported; use float32 or float64")
    return _DTYPES[name]


@functools.cache
def _blas_controller() -> Any:
    """One threadpoolctl controller: building one scans the loaded libraries (~10 ms), too slow for every fit."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def fit_logistic(x: torch.Tensor, codes: torch.Tensor, n_classes: int, C: float, fit_intercept: bool = True,
                 max_iter: int = 500, tol: float = 1e-4, init: tuple[torch.Tensor, torch.Tensor] | None = None,
                 ) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Minimise mean CE + ‖W‖²_F / (2·C·n) (scikit-learn's L2 objective divided by n), intercept unpenalised.

    Two classes use one weight vector with the binomial loss (as scikit-learn does), more use the full softmax.
    Solver: scipy's L-BFGS-B (as scikit-learn's lbfgs: same gtol/ftol/maxls) on a hand-written loss and gradient.
    The two matmuls per evaluation run in x's dtype with class-major operands (k×d @ d×n and k×n @ n×d, the
    fast layouts for thin BLAS products), as does the softmax; the loss sums and the parameters are float64.
    Returns (W (d, k'), b (k',), iterations), k' = 1 for binary.
    """
    from scipy.optimize import minimize

    if C <= 0:
        raise ConfigError(f"C must be > 0, got {C}")
    n, d = x.shape
    k = 1 if n_classes == 2 else n_classes
    f64 = torch.float64
    xt = x.T.contiguous()  # (d, n): forward product Wᵀ·Xᵀ reads it row-major
    lam = 1.0 / (C * n)
    codes = codes.to(x.device)
    yf = codes.to(f64)[None, :] if k == 1 else None
    n_w = k * d

    onehot = None if k == 1 else F.one_hot(codes, k).T.to(x.dtype).contiguous()  # (k, n)
    zt = torch.empty(k, n, dtype=x.dtype, device=x.device)
    gw_x = torch.empty(k, d, dtype=x.dtype, device=x.device)

    def loss_grad(theta_np: np.ndarray) -> tuple[float, np.ndarray]:
        theta = torch.from_numpy(theta_np).to(x.device)
        wt = theta[:n_w].view(k, d)
        if fit_intercept:
            torch.addmm(theta[n_w:, None].to(x.dtype), wt.to(x.dtype), xt, out=zt)
        else:
            torch.mm(wt.to(x.dtype), xt, out=zt)
        if k == 1:
            z64 = zt.to(f64)
            data = (F.softplus(z64) - yf * z64).sum()
            gt = (torch.sigmoid(z64) - yf).div_(n).to(x.dtype)
        else:  # softmax in x's dtype (one pass each, in place), sums accumulated in float64
            m = zt.amax(0, keepdim=True)
            gt = torch.exp(zt - m)
            s = gt.sum(0, keepdim=True)
            data = (s.log() + m).sum(dtype=f64) - (zt * onehot).sum(dtype=f64)
            gt.div_(s).sub_(onehot).div_(n)
        loss = data / n + 0.5 * lam * (wt * wt).sum()
        torch.mm(gt, x, out=gw_x)
        grad = torch.empty(theta.shape[0], dtype=f64, device=x.device)
        grad[:n_w].view(k, d).copy_(gw_x).add_(wt, alpha=lam)
        if fit_intercept:
            grad[n_w:] = gt.sum(1, dtype=f64)
        return float(loss), grad.cpu().numpy()

    theta0 = np.zeros(n_w + (k if fit_intercept else 0))
    if init is not None:
        theta0[:n_w] = init[0].detach().to(device="cpu", dtype=f64).T.reshape(-1).numpy()
        if fit_intercept:
            theta0[n_w:] = init[1].detach().to(device="cpu", dtype=f64).numpy()
    # scipy's L-BFGS-B calls (multi-threaded) OpenBLAS on tiny vectors; its spinning threads fight torch's for the
    # cores and made every evaluation ~2x slower, so keep that BLAS on one thread while we optimise
    with _blas_controller().limit(limits=1, user_api="blas"):
        res = minimize(loss_grad, theta0, jac=True, method="L-BFGS-B",
                       options={"maxiter": max_iter, "maxls": 50, "gtol": tol, "ftol": 64 * np.finfo(float).eps})
    theta = torch.as_tensor(res.x, dtype=x.dtype, device=x.device)
    w = theta[:n_w].view(k, d).T.contiguous()
    b = theta[n_w:].clone() if fit_intercept else torch.zeros(k, dtype=x.dtype, device=x.device)
    return w, b, int(res.nit)


class LogisticProbe(ProbeClassifier):
    """Linear probe: multinomial logistic regression with L2 penalty, standardization inside.

    Objective (as scikit-learn's LogisticRegression): Σᵢ CE(W xᵢ + b, yᵢ) + ‖W‖²/(2C). With `Cs` given, C is
    chosen by stratified `cv`-fold accuracy on the training set (refit on all of it), stored in `C_`.
    """

    def __init__(self, C: float = 1.0, Cs: Sequence[float] | None = None, cv: int = 3, standardize: bool = True,
                 fit_intercept: bool = True, max_iter: int = 500, tol: float = 1e-4, dtype: str = "float32",
                 random_state: int | None = 0, device: str = "auto"):
        self.C = C
        self.Cs = Cs
        self.cv = cv
        self.standardize = standardize
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.dtype = dtype
        self.random_state = random_state
        self.device = device

    def _fit_one(self, x: torch.Tensor, codes: torch.Tensor, n_classes: int, C: float,
                 init: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor, int]:
        return fit_logistic(x, codes, n_classes, C, self.fit_intercept, self.max_iter, self.tol, init)

    def _select_C(self, x: torch.Tensor, codes_np: np.ndarray, n_classes: int) -> tuple[float, dict[float, float]]:
        from sklearn.model_selection import StratifiedKFold

        Cs = sorted(float(c) for c in self.Cs)
        counts = np.bincount(codes_np)
        folds = max(2, min(int(self.cv), int(counts.min())))
        skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=self.random_state)
        scores = {c: 0.0 for c in Cs}
        for tr, te in skf.split(np.zeros(len(codes_np)), codes_np):
            tr_t = torch.as_tensor(tr, device=x.device)
            te_t = torch.as_tensor(te, device=x.device)
            scaler = Standardizer(self.standardize).fit(x[tr_t])
            xtr, xte = scaler.transform(x[tr_t]), scaler.transform(x[te_t])
            ytr = torch.as_tensor(codes_np[tr], device=x.device)
            yte = codes_np[te]
            init = None
            for c in Cs:  # warm start along increasing C
                w, b, _ = self._fit_one(xtr, ytr, n_classes, c, init)
                init = (w, b)
                z = (xte @ w + b).cpu().numpy()
                pred = (z[:, 0] > 0).astype(int) if z.shape[1] == 1 else z.argmax(1)
                scores[c] += float((pred == yte).mean()) / folds
        best = max(Cs, key=lambda c: (scores[c], -abs(np.log(c))))
        return best, scores

    def fit(self, X: Any, y: Any) -> LogisticProbe:
        """Fit on features X (n, d) and labels y (n,)."""
        dev = self._device()
        x, codes_np = self._fit_input(X, y, _dtype(self.dtype), dev)
        with cpu_threads_for(float(x.shape[0] * x.shape[1]) * max(2, len(self.classes_)), dev):
            return self._fit(x, codes_np, dev)

    def _fit(self, x: torch.Tensor, codes_np: np.ndarray, dev: torch.device) -> LogisticProbe:
        k = len(self.classes_)
        if self.Cs is not None and len(self.Cs) > 0:
            self.C_, self.cv_scores_ = self._select_C(x, codes_np, k)
        else:
            self.C_, self.cv_scores_ = float(self.C), {}
        self._scaler = Standardizer(self.standardize).fit(x)
        codes = torch.as_tensor(codes_np, device=dev)
        w, b, it = self._fit_one(self._scaler.transform(x), codes, k, self.C_)
        self._w, self._b = w, b
        self.n_iter_ = it
        self.coef_ = w.T.cpu().numpy()  # in standardized units, (k', d) like scikit-learn
        self.intercept_ = b.cpu().numpy()
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        """Logits (n, k) for k > 2 classes, the margin (n,) for two."""
        self._check_fitted()
        x = self._scaler.transform(self._input(X, self._w.device, self._w.dtype))
        z = torch.addmm(self._b, x, self._w)
        z = z.cpu().numpy()
        return z[:, 0] if z.shape[1] == 1 else z

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (n, k): softmax of the logits (sigmoid for two classes)."""
        z = torch.as_tensor(self.decision_function(X), dtype=torch.float64)
        if z.ndim == 1:
            p1 = torch.sigmoid(z)
            return torch.stack([1 - p1, p1], 1).numpy()
        return torch.softmax(z, 1).numpy()

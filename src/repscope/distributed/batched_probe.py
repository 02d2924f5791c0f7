"""Batched logistic-probe sweeps: every CV fold × every C value of one layer fitted as one batched problem.

Each problem b minimises scikit-learn's L2 logistic objective divided by its training-set size,
mean CE(Wᵦx + bᵦ, y) + ‖Wᵦ‖²/(2·Cᵦ·nᵦ), intercept unpenalised, on features z-scored with its own fold's training
statistics. The problems share one feature matrix, so each evaluation is one fat GEMM X·[W₁ … W_B] with per-problem
row masks instead of B thin ones, and one batched L-BFGS (Nocedal & Wright alg. 7.4, Armijo backtracking per
problem) drives them all; a problem stops once its gradient's max-norm is below `tol`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from repscope.device import resolve_device
from repscope.errors import ConfigError
from repscope.probe.base import cpu_threads_for


def _fold_stats(x: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-fold training mean and std (ddof 0, zeros → 1) from (F, n) 0/1 masks, in float64."""
    m = masks.to(torch.float64)
    cnt = m.sum(1, keepdim=True)
    x64 = x.to(torch.float64)
    mean = (m @ x64) / cnt
    var = (m @ (x64 * x64)) / cnt - mean * mean
    std = var.clamp_min(0).sqrt()
    return mean, torch.where(std > 0, std, torch.ones_like(std))


def logistic_sweep(x: Any, y: Any, folds: Sequence[tuple[np.ndarray, np.ndarray]], Cs: Sequence[float], *,
                   max_iter: int = 500, tol: float = 1e-4, history: int = 10, device: str = "auto") -> np.ndarray:
    """Held-out accuracy (len(folds), len(Cs)) of L2 logistic probes for every fold × C, fitted as one batch.

    Binary targets use one weight vector (the binomial loss), more classes the full softmax, as scikit-learn does.
    """
    if min(Cs) <= 0:
        raise ConfigError(f"C must be > 0, got {min(Cs)}")
    dev = resolve_device(device)
    f64 = torch.float64
    xt = torch.as_tensor(np.asarray(x), device=dev, dtype=f64)
    xt = xt.reshape(xt.shape[0], -1)
    classes, codes_np = np.unique(np.asarray(y), return_inverse=True)
    n, d = xt.shape
    k = 1 if len(classes) == 2 else len(classes)
    n_f, n_c = len(folds), len(Cs)
    train = torch.zeros(n_f, n, dtype=torch.bool, device=dev)
    for f, (tr, _) in enumerate(folds):
        train[f, torch.as_tensor(tr, device=dev)] = True
    mean, std = _fold_stats(xt, train)  # (F, d)
    codes = torch.as_tensor(codes_np, device=dev)
    target = codes.to(f64)[:, None] if k == 1 else F.one_hot(codes, k).to(f64)  # (n, k)
    # problem b = (fold f, C c), b = f·n_c + c; standardization folded into the weights: W' = W/std, b' = b − mean·W'
    fold_of = torch.arange(n_f, device=dev).repeat_interleave(n_c)
    lam = torch.tensor([1.0 / (float(c) * float(train[f].sum())) for f in range(n_f) for c in Cs], dtype=f64,
                       device=dev)
    w_mask = train[fold_of].to(f64) / train[fold_of].sum(1, keepdim=True)  # (B, n): 1/n_b on training rows
    s_inv, mu = (1.0 / std)[fold_of], mean[fold_of]  # (B, d)
    n_b = n_f * n_c

    def loss_grad(theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        wz, bias = theta[:, : d * k].view(n_b, d, k), theta[:, d * k :]  # weights on z-scored features
        w = wz * s_inv[:, :, None]  # on raw features
        b0 = bias - torch.einsum("bd,bdk->bk", mu, w)
        z = (xt @ w.permute(1, 0, 2).reshape(d, n_b * k)).view(n, n_b, k) + b0[None]  # one fat GEMM
        if k == 1:
            data = F.softplus(z) - target[:, None, :] * z
            g = torch.sigmoid(z) - target[:, None, :]
        else:
            lse = torch.logsumexp(z, 2, keepdim=True)
            data = lse - (z * target[:, None, :]).sum(2, keepdim=True)
            g = torch.exp(z - lse) - target[:, None, :]
        loss = (data.sum(2).T * w_mask).sum(1) + 0.5 * lam * (wz * wz).sum((1, 2))
        gm = g * w_mask.T[:, :, None]  # (n, B, k)
        gw_raw = (xt.T @ gm.reshape(n, n_b * k)).view(d, n_b, k).permute(1, 0, 2)  # second fat GEMM
        gb = gm.sum(0)  # (B, k)
        gwz = (gw_raw - mu[:, :, None] * gb[:, None, :]) * s_inv[:, :, None] + lam[:, None, None] * wz
        return loss, torch.cat([gwz.reshape(n_b, d * k), gb], 1)

    theta = torch.zeros(n_b, (d + 1) * k, dtype=f64, device=dev)
    with cpu_threads_for(float(n * d * n_b * k), dev):  # small batches: one thread beats OpenMP barriers
        theta = _batched_lbfgs(loss_grad, theta, max_iter=max_iter, tol=tol, history=history)
    wz, bias = theta[:, : d * k].view(n_b, d, k), theta[:, d * k :]
    w = wz * s_inv[:, :, None]
    b0 = bias - torch.einsum("bd,bdk->bk", mu, w)
    z = (xt @ w.permute(1, 0, 2).reshape(d, n_b * k)).view(n, n_b, k) + b0[None]
    pred = (z[..., 0] > 0).long() if k == 1 else z.argmax(2)  # (n, B)
    acc = np.zeros((n_f, n_c))
    for f, (_, te) in enumerate(folds):
        te_t = torch.as_tensor(te, device=dev)
        hit = (pred[te_t][:, f * n_c : (f + 1) * n_c] == codes[te_t][:, None]).to(f64).mean(0)
        acc[f] = hit.cpu().numpy()
    return acc


def _batched_lbfgs(fn, theta: torch.Tensor, *, max_iter: int, tol: float, history: int) -> torch.Tensor:
    """Minimise B independent smooth objectives at once; `fn(theta (B, p))` returns (losses (B,), grads (B, p))."""
    loss, grad = fn(theta)
    s_hist: list[torch.Tensor] = []
    y_hist: list[torch.Tensor] = []
    active = grad.abs().amax(1) > tol
    gamma = 1.0 / grad.abs().amax(1).clamp_min(1.0)  # initial Hessian scale sᵀy/yᵀy, updated by good pairs
    for _ in range(max_iter):
        if not bool(active.any()):
            break
        q = grad.clone()  # two-loop recursion, per problem
        alphas = []
        for s, yv in zip(reversed(s_hist), reversed(y_hist), strict=True):
            sy = (s * yv).sum(1)
            rho = torch.where(sy > 0, 1.0 / sy.clamp_min(1e-300), torch.zeros_like(sy))  # skipped pairs are zeros
            a = rho * (s * q).sum(1)
            q -= a[:, None] * yv
            alphas.append((rho, a))
        q *= gamma[:, None]
        for s, yv, (rho, a) in zip(s_hist, y_hist, reversed(alphas), strict=True):
            b = rho * (yv * q).sum(1)
            q += (a - b)[:, None] * s
        direction = -q * active[:, None]
        slope = (grad * direction).sum(1)
        bad = slope >= 0  # not a descent direction: fall back to steepest descent
        direction[bad] = -grad[bad] * active[bad, None]
        slope = (grad * direction).sum(1)
        step = torch.ones_like(loss)
        todo = active.clone()
        new_loss, new_grad = loss, grad
        new_theta = theta
        for _ls in range(30):  # Armijo backtracking, each problem with its own step
            cand = theta + step[:, None] * direction
            c_loss, c_grad = fn(cand)
            ok = c_loss <= loss + 1e-4 * step * slope
            take = todo & ok
            new_theta = torch.where(take[:, None], cand, new_theta)
            new_loss = torch.where(take, c_loss, new_loss)
            new_grad = torch.where(take[:, None], c_grad, new_grad)
            todo &= ~ok
            if not bool(todo.any()):
                break
            step = torch.where(todo, step * 0.5, step)
        s_new, y_new = new_theta - theta, new_grad - grad
        sy, yy = (s_new * y_new).sum(1), (y_new * y_new).sum(1)
        good = sy > 1e-12 * yy.sqrt() * (s_new * s_new).sum(1).sqrt()
        gamma = torch.where(good, sy / yy.clamp_min(1e-300), gamma)
        s_hist.append(torch.where(good[:, None], s_new, torch.zeros_like(s_new)))
        y_hist.append(torch.where(good[:, None], y_new, torch.zeros_like(y_new)))
        if len(s_hist) > history:
            s_hist.pop(0)
            y_hist.pop(0)
        stalled = active & ((loss - new_loss).abs() <= 64 * torch.finfo(loss.dtype).eps * loss.abs().clamp_min(1))
        theta, loss, grad = new_theta, new_loss, new_grad
        active = active & (grad.abs().amax(1) > tol) & ~stalled
    return theta

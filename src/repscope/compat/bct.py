"""BCT-style compatible head on frozen new features (Shen et al. 2020, "Towards backward-compatible representation
learning"): a linear projection P of the new features into the old space, trained with its own task loss plus the
*old* classifier's loss on the projected features (the influence loss),

    L(P, w_new) = CE(w_new(P x_new), y) + λ · CE(w_old(P x_new), y),    w_old frozen.

The old classifier w_old is the project's one linear readout: a `LogisticProbe` fit on the fit split's old features
as the search sees them — unit rows x/‖x‖ for cosine retrieval, raw rows for euclidean, not re-standardized — so the
influence loss acts in the geometry retrieval uses and its logits on P x_new are differentiable in P. The new
classifier w_new is a linear layer on the same view of P x_new, trained jointly with P (full-batch Adam); the new
features enter P z-scored.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from repscope.device import as_matrix, resolve_device
from repscope.errors import ConfigError
from repscope.kernels.estimator import Standardizer, cpu_threads_for


class BCTHead:
    """Compatible projection new → old space (Shen et al. 2020): min CE(w_new(Px), y) + λ·CE(w_old(Px), y).

    Learned state: `proj_` (d_new → d_old, acting on z-scored new features), `old_classifier_` (the frozen
    LogisticProbe), `loss_` (final total loss), `influence_loss_` (final λ-free old-classifier loss)."""

    def __init__(self, lam: float = 1.0, epochs: int = 300, lr: float = 1e-2, weight_decay: float = 1e-4,
                 C: float = 1.0, metric: str = "cosine", seed: int = 0, progress: bool = False,
                 device: str = "auto"):
        self.lam = lam
        self.metric = metric
        self.epochs = epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.C = C
        self.seed = seed
        self.progress = progress
        self.device = device

    def fit(self, old: Any, new: Any, labels: Any) -> BCTHead:
        """Fit the old classifier on (old, labels), then P and w_new on (new, labels) with the influence loss."""
        from repscope.extract.progress import make_progress
        from repscope.kernels.logistic import LogisticProbe

        if self.lam < 0 or self.epochs < 1 or self.lr <= 0:
            raise ConfigError(f"bct needs lam >= 0, epochs >= 1 and lr > 0 (got {self.lam}, {self.epochs}, {self.lr})")
        if self.metric not in ("cosine", "euclidean"):
            raise ConfigError(f"metric '{self.metric}' unknown; use cosine or euclidean")
        dev = resolve_device(self.device)
        o = as_matrix(old, dev, torch.float32, name="old features", min_rows=2, purpose="training a BCT head")
        n = as_matrix(new, dev, torch.float32, name="new features", min_rows=2, purpose="training a BCT head")
        classes, codes_np = np.unique(np.asarray(labels), return_inverse=True)
        y = torch.as_tensor(codes_np, device=dev)
        self.new_scaler_ = Standardizer().fit(n)
        clf = LogisticProbe(C=self.C, standardize=False, device=str(dev)).fit(self._view(o), codes_np)
        self.old_classifier_ = clf
        w_old = torch.as_tensor(clf.coef_, dtype=torch.float32, device=dev)  # (k', d_old)
        b_old = torch.as_tensor(clf.intercept_, dtype=torch.float32, device=dev)
        if w_old.shape[0] == 1:  # binary: the margin is the logit of class 1 against 0
            w_old, b_old = torch.cat([torch.zeros_like(w_old), w_old]), torch.cat([torch.zeros_like(b_old), b_old])
        x = self.new_scaler_.transform(n)
        d_new, d_old, k = x.shape[1], o.shape[1], len(classes)
        gen = torch.Generator(device="cpu").manual_seed(int(self.seed))
        proj = torch.nn.Linear(d_new, d_old).to(dev)
        head = torch.nn.Linear(d_old, k).to(dev)
        with torch.no_grad():  # seeded init without touching the global RNG; outputs start around the old mean
            proj.weight.copy_(torch.randn(d_old, d_new, generator=gen) * (o.std(0).mean() / d_new ** 0.5))
            proj.bias.copy_(o.mean(0))
            head.weight.copy_(torch.randn(k, d_old, generator=gen) / d_old ** 0.5)
            head.bias.zero_()
        params = [*proj.parameters(), *head.parameters()]
        opt = torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)
        ce = torch.nn.functional.cross_entropy
        with (cpu_threads_for(float(x.shape[0] * d_old * (d_new + k)), dev),
              make_progress("epochs", disable=not self.progress, extra="loss {task.fields[loss]}") as bar):
            task = bar.add_task("bct head", total=int(self.epochs), loss="–")
            for _ in range(int(self.epochs)):
                opt.zero_grad()
                u = self._view(proj(x))  # P x_new as the search sees it
                influence = ce(u @ w_old.T + b_old, y)
                loss = ce(head(u), y) + self.lam * influence
                loss.backward()
                opt.step()
                bar.update(task, advance=1, loss=f"{loss.item():.4f}")
        self.proj_, self.head_ = proj.eval(), head.eval()
        self.loss_, self.influence_loss_ = loss.item(), influence.item()
        self.classes_ = classes
        return self

    def _view(self, x: torch.Tensor) -> torch.Tensor:
        """Rows as the retrieval metric sees them: unit rows for cosine, raw rows for euclidean."""
        return torch.nn.functional.normalize(x, dim=1) if self.metric == "cosine" else x

    def transform(self, new: Any) -> torch.Tensor:
        """New features projected into the old space, P(z(x_new)), as float64 on the CPU."""
        if not hasattr(self, "proj_"):
            from repscope.validation import EstimatorNotFittedError

            raise EstimatorNotFittedError("this BCTHead is not fitted yet; call fit(old, new, labels) first")
        dev = self.proj_.weight.device
        x = self.new_scaler_.transform(as_matrix(new, dev, torch.float32, name="new features"))
        with torch.no_grad():
            return self.proj_(x).to(torch.float64).cpu()

"""The one linear readout for transfer analyses: a `LogisticProbe` fitted on one set of features and scored on
others (stitching, relative representations, probe-after-reconstruction)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from repscope.device import as_matrix
from repscope.errors import ConfigError

SCALINGS = ("isotropic", "standard")


def transfer_accuracy(x_train: Any, y_train: Any, tests: Mapping[str, tuple[Any, Any]], *, scaling: str = "isotropic",
                      C: float = 1.0, max_iter: int = 500, device: str = "auto") -> dict[str, float]:
    """Accuracy of one `LogisticProbe` (L2 logistic regression, C, scikit-learn's objective) fitted on
    (x_train, y_train), on each named test set (x, y) of `tests`.

    `scaling="isotropic"` (default): inputs are centred and divided by one global scale s = √(mean ‖x − x̄‖² / d),
    both fitted on x_train, and the probe runs unstandardised. Every direction keeps its weight, so a test set that
    differs from the training features (a reconstruction, a stitched or another model's representation) is not
    judged by its errors in near-constant training directions, which per-feature z-scoring would blow up (on MiniLM
    SST-2 it sends a top-k SAE reconstruction to chance). `scaling="standard"`: the probe's own per-feature
    z-scoring, as the probe sweep uses; right only when every test set comes from the training distribution.
    """
    from repscope.kernels.logistic import LogisticProbe

    if scaling not in SCALINGS:
        raise ConfigError(f"unknown readout scaling '{scaling}'; use one of {', '.join(SCALINGS)}")
    xt = as_matrix(x_train, "cpu", torch.float64, name="training features", min_rows=2, purpose="probing")
    if scaling == "isotropic":
        mu = xt.mean(0)
        scale = float(((xt - mu) ** 2).sum(1).mean() / xt.shape[1]) ** 0.5 or 1.0

        def prep(x: Any) -> torch.Tensor:
            return (as_matrix(x, "cpu", torch.float64, name="test features", purpose="probing") - mu) / scale
    else:

        def prep(x: Any) -> torch.Tensor:
            return as_matrix(x, "cpu", torch.float64, name="test features", purpose="probing")

    probe = LogisticProbe(C=C, max_iter=max_iter, standardize=scaling == "standard", device=device)
    probe.fit(prep(xt), np.asarray(y_train))
    return {name: float(probe.score(prep(x), np.asarray(y))) for name, (x, y) in tests.items()}

"""The one input validator of every estimator: scikit-learn's contract (`validate_data`), then `as_matrix` to torch.

scikit-learn's `validate_data` sets and checks `n_features_in_` / `feature_names_in_`, refuses sparse, complex and
string input, 1-D X, too few rows and a missing y, with the messages its estimator checks expect. `as_matrix` then
moves the array to the estimator's device and dtype and refuses NaN/Inf (`NonFiniteError`). Torch tensors skip the
numpy round trip (they may live on a GPU) and get the same width check. Every refusal is a `DataError` (a
`RepscopeError` and a `ValueError`) with a one-line message.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import torch
from sklearn.exceptions import NotFittedError

from repscope.device import as_matrix
from repscope.errors import ConfigError, DataError
from repscope.threads import limit_threads

_NO_Y = "no_validation"


class EstimatorNotFittedError(ConfigError, NotFittedError):
    """An estimator was used before `fit`: a `ConfigError` (one line in the CLI) and scikit-learn's
    `NotFittedError`."""


def require_fitted(est: Any, attribute: str) -> None:
    """Raise `EstimatorNotFittedError` naming the estimator unless it has the fitted `attribute`."""
    if not hasattr(est, attribute):
        raise EstimatorNotFittedError(f"this {type(est).__name__} is not fitted yet; call fit() first")


def one_line(err: Exception) -> str:
    """An exception's message on one line (scikit-learn's array dumps dropped)."""
    msg = re.sub(r"array=\[.*?\]\.?", "", str(err), flags=re.DOTALL)
    return " ".join(s.strip() for s in msg.splitlines() if s.strip())


def _check_width(est: Any, n_features: int, reset: bool) -> None:
    if reset:
        est.n_features_in_ = int(n_features)
        if hasattr(est, "feature_names_in_"):  # a tensor has no column names: drop those of an earlier fit
            del est.feature_names_in_
        return
    expected = getattr(est, "n_features_in_", None)
    if expected is not None and n_features != expected:
        raise DataError(f"X has {n_features} features, but {type(est).__name__} is expecting {expected} features "
                        "as input; pass data with the columns the estimator was fitted on")


def validate_input(est: Any, X: Any, y: Any = _NO_Y, *, reset: bool, device: torch.device,
                   dtype: torch.dtype = torch.float32, min_samples: int = 1, y_numeric: bool = False,
                   multi_output: bool = False, purpose: str = "fitting") -> Any:
    """Validate X (and y when given) for estimator `est`; returns the (n, d) tensor, or (tensor, y ndarray).

    `reset=True` (fit) records `n_features_in_`; `reset=False` (predict/transform) checks the width against it.
    Arrays with more than two axes are flattened to one row per sample (as `as_matrix` does).
    """
    has_y = not (isinstance(y, str) and y == _NO_Y)
    if getattr(X, "ndim", 2) > 2 and hasattr(X, "reshape"):  # (n, c, h, w) maps etc.: one row per sample
        X = X.reshape(X.shape[0], -1)
    if isinstance(X, torch.Tensor):
        if X.ndim != 2:
            raise DataError(f"X must be 2-D (n_samples, n_features), got shape {tuple(X.shape)}; Reshape your data "
                            "with x[:, None] for one feature or x[None, :] for one sample")
        if X.shape[0] < min_samples:
            raise DataError(f"Found array with {X.shape[0]} sample(s) (shape={tuple(X.shape)}) while a minimum of "
                            f"{min_samples} is required by {type(est).__name__}")
        _check_width(est, X.shape[1], reset)
        t = _tensor(X, device, dtype, min_samples, purpose)
        if not has_y:
            return t
        y = y.cpu().numpy() if isinstance(y, torch.Tensor) else y
        y = _validate(est, "no_validation", y, reset=False, y_numeric=y_numeric, multi_output=multi_output)
        if len(y) != t.shape[0]:
            raise DataError(f"X has {t.shape[0]} rows but y has {len(y)}; pass one target per row")
        return t, y
    if has_y and isinstance(y, torch.Tensor):
        y = y.cpu().numpy()
    out = _validate(est, X, y, reset=reset, min_samples=min_samples, y_numeric=y_numeric, multi_output=multi_output)
    x_np, y_np = out if has_y else (out, None)
    t = _tensor(x_np, device, dtype, min_samples, purpose)
    return (t, y_np) if has_y else t


SMALL_INPUT = 1 << 20  # elements below which the conversion and NaN scan run faster on one thread (no hand-offs)


def _tensor(x: Any, device: torch.device, dtype: torch.dtype, min_samples: int, purpose: str) -> torch.Tensor:
    small = torch.device(device).type == "cpu" and int(np.prod(x.shape)) < SMALL_INPUT
    with limit_threads(1 if small else None, blas=False):
        return as_matrix(x, device, dtype, allow_1d=False, min_rows=min_samples, purpose=purpose, name="X")


def validate_array(X: Any, *, device: torch.device, dtype: torch.dtype = torch.float32,
                   name: str = "X") -> torch.Tensor:
    """A 2-D array that belongs to no estimator width (latent codes, say) through the same checks, as a tensor."""
    if isinstance(X, torch.Tensor):
        if X.ndim != 2:
            raise DataError(f"{name} must be 2-D, got shape {tuple(X.shape)}")
        return as_matrix(X, device, dtype, allow_1d=False, name=name)
    from sklearn.utils.validation import check_array

    try:
        x = check_array(X, accept_sparse=False, dtype=(np.float64, np.float32), ensure_all_finite=False,
                        force_writeable=True, input_name=name)
    except ValueError as err:
        raise DataError(one_line(err)) from err
    return as_matrix(x, device, dtype, allow_1d=False, name=name)


def _validate(est: Any, X: Any, y: Any, *, reset: bool, min_samples: int = 1, y_numeric: bool = False,
              multi_output: bool = False) -> Any:
    from scipy.sparse import issparse
    from sklearn.utils.validation import validate_data

    if issparse(X) or issparse(y):
        raise DataError(f"{type(est).__name__} needs dense arrays but got a sparse matrix; pass X.toarray() (sparse "
                        "input is not supported)")
    if isinstance(X, str) and X == _NO_Y:  # y alone (X was a tensor)
        params: dict[str, Any] = dict(y_numeric=y_numeric, multi_output=multi_output)
    else:
        params = dict(accept_sparse=False, dtype=(np.float64, np.float32), ensure_all_finite=False,
                      ensure_min_samples=min_samples, force_writeable=True)
        if not (isinstance(y, str) and y == _NO_Y):
            params |= dict(y_numeric=y_numeric, multi_output=multi_output)
    try:
        return validate_data(est, X, y, reset=reset, **params)
    except ValueError as err:
        if isinstance(err, DataError):
            raise
        hint = "; pass data with the columns the estimator was fitted on" if "features, but" in str(err) else ""
        raise DataError(one_line(err) + hint) from err


def classification_labels(y: Any) -> tuple[np.ndarray, np.ndarray]:
    """(classes_, codes) for classifier targets: classes sorted as np.unique sorts them (like scikit-learn).

    Continuous targets are refused ("Unknown label type"), and so is a single class."""
    from sklearn.utils.multiclass import check_classification_targets

    y = np.asarray(y.cpu() if isinstance(y, torch.Tensor) else y)
    if y.ndim != 1:
        y = y.reshape(-1)
    try:
        check_classification_targets(y)
    except ValueError as err:
        raise DataError(one_line(err) + "; a classifier probe needs discrete labels (use the ridge probe for "
                        "continuous targets)") from err
    classes, codes = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise DataError(f"a classifier probe needs at least 2 classes, got only 1 class ({classes[0]!r}); "
                        "check the target column")
    return classes, codes

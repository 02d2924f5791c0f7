"""`LogisticProbe`'s old address, kept for user code: the one logistic readout lives in `repscope.kernels.logistic`."""

from repscope.kernels.logistic import LogisticProbe, fit_logistic

__all__ = ["LogisticProbe", "fit_logistic"]

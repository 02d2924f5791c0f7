"""The probe estimators' shared plumbing, old address kept for user code: it lives in `repscope.kernels.estimator`."""

from repscope.kernels.estimator import (
    SMALL_WORK,
    ProbeClassifier,
    Standardizer,
    cpu_threads_for,
    encode_labels,
    to_2d,
)

__all__ = ["SMALL_WORK", "ProbeClassifier", "Standardizer", "cpu_threads_for", "encode_labels", "to_2d"]

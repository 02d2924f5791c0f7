"""The probe scores' old address, kept for user code: confidence intervals and STS live in
`repscope.kernels.metrics`, label retrieval in `repscope.kernels.retrieval`."""

from repscope.kernels.metrics import mean_ci, pair_cosine, sts_spearman, wilson_ci
from repscope.kernels.retrieval import retrieval_metrics

__all__ = ["mean_ci", "pair_cosine", "retrieval_metrics", "sts_spearman", "wilson_ci"]

"""The streaming statistics' old address, kept for user code: they live in `repscope.kernels.streaming`. The streamed
ridge and Gaussian probes are `RidgeProbe.fit_blocks` and `NaiveBayesProbe.fit_blocks` (or `partial_fit`)."""

from repscope.kernels.streaming import (
    LayerStats,
    Moments,
    blocks,
    layer_stats,
    moments,
    participation_ratio_of,
    streaming_mean_cosine,
    streaming_participation_ratio,
    streaming_predict,
    streaming_score,
    streaming_spectrum,
)

__all__ = ["LayerStats", "Moments", "blocks", "layer_stats", "moments", "participation_ratio_of",
           "streaming_mean_cosine", "streaming_participation_ratio", "streaming_predict", "streaming_score",
           "streaming_spectrum"]

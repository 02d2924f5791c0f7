"""repscope.disentangle: how disentangled a representation is with respect to known factors of variation.

Metrics (pure functions over latents (n, d) and factors (n, k)): MIG, DCI, SAP, modularity and explicitness,
β-VAE and FactorVAE scores, InfoMEC. `disentanglement_scores` runs a chosen set on one array;
`disentangle_store` runs them on each layer of a RepStore and returns a `Result`.

Names are imported on first use (PEP 562, `repscope.lazy.attach`), so importing the package stays cheap.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from repscope.disentangle.dci_score import IMPORTANCES, dci, dci_from_importance
    from repscope.disentangle.infomec_score import infomec, normalized_mi
    from repscope.disentangle.inputs import bin_equal_width, encode_factors
    from repscope.disentangle.mi import mig, mutual_info_matrix
    from repscope.disentangle.modularity_score import explicitness, modularity
    from repscope.disentangle.sap_score import sap
    from repscope.disentangle.scores import beta_vae_score, factor_vae_score
    from repscope.disentangle.store import ANALYSIS, disentangle_store
    from repscope.disentangle.suite import (
        DEFAULT_METRICS,
        DISENTANGLEMENT_METRICS,
        METRICS,
        SCORE_NAMES,
        disentanglement_details,
        disentanglement_scores,
        heatmap_payload,
        resolve_metrics,
    )
else:
    from repscope.lazy import attach

    __getattr__, __dir__ = attach(__name__)

__all__ = [
    "ANALYSIS", "DEFAULT_METRICS", "DISENTANGLEMENT_METRICS", "IMPORTANCES", "METRICS", "SCORE_NAMES", "beta_vae_score",
    "bin_equal_width", "dci", "dci_from_importance", "disentangle_store", "disentanglement_details",
    "disentanglement_scores", "encode_factors", "explicitness", "factor_vae_score", "heatmap_payload", "infomec", "mig",
    "modularity", "mutual_info_matrix", "normalized_mi", "resolve_metrics", "sap",
]

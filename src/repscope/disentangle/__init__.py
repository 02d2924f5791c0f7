"""repscope.disentangle: how disentangled a representation is with respect to known factors of variation.

Metrics (pure functions over latents (n, d) and factors (n, k)): MIG, DCI, SAP, modularity and explicitness,
β-VAE and FactorVAE scores, InfoMEC. `disentanglement_scores` runs a chosen set on one array;
`disentangle_store` runs them on each layer of a RepStore and returns a `Result`.

Names are imported on first use (`repscope.lazy`), so importing the package stays cheap.
"""

from repscope.lazy import lazy_package

__all__ = lazy_package(__name__, {
    "ANALYSIS": "store", "DEFAULT_METRICS": "suite", "DISENTANGLEMENT_METRICS": "suite", "IMPORTANCES": "dci",
    "METRICS": "suite", "SCORE_NAMES": "suite", "beta_vae_score": "scores", "bin_equal_width": "inputs",
    "dci": "dci", "dci_from_importance": "dci", "disentangle_store": "store", "disentanglement_details": "suite",
    "disentanglement_scores": "suite", "encode_factors": "inputs", "explicitness": "modularity",
    "factor_vae_score": "scores", "heatmap_payload": "suite", "infomec": "infomec", "mig": "mi",
    "modularity": "modularity", "mutual_info_matrix": "mi", "normalized_mi": "infomec", "resolve_metrics": "suite",
    "sap": "sap",
})

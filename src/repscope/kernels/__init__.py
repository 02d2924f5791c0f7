"""repscope.kernels: the shared numerics every analysis plugin may use, so no plugin imports another.

- `knn`: the one exact k-NN engine (`knn_distances`, `knn_query`, `knn_search`; tie rule: (float64 distance, index));
- `estimator`: the estimators' plumbing (input conversion, `Standardizer`, `ProbeClassifier`, thread limits);
- `logistic`: the one linear readout, `LogisticProbe` (L2 logistic regression, L-BFGS);
- `readout`: `transfer_accuracy`, that readout fitted on one feature set and scored on others;
- `retrieval`: the one label-retrieval implementation (recall@k, mAP, nDCG@10), leave-one-out or cross-model;
- `metrics`: confidence intervals, Spearman's ρ, STS;
- `streaming`: float64 sufficient statistics over a layer read chunk by chunk (moments, layer statistics, ridge and
  per-class Gaussian sums), used by the streaming paths of the probes and the geometry measures.

Layer rule (checked by `lint-imports`): kernels import only the core modules, never storage, sources or a plugin.
Import from the submodules (`from repscope.kernels.knn import knn_query`).
"""

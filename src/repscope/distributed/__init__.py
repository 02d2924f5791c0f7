"""Scale-out on Ray (optional extra `repscope[ray]`): extraction and analysis sweeps, same code path as local.

Nothing here imports ray at module import time; `cluster.require_ray()` does, on first use, and turns a missing
install into a one-line `RepscopeError` ("install repscope[ray]"). The local path never imports this package's
Ray-facing functions, so `import repscope.cli` and a local extract leave `ray` out of `sys.modules`.

- `ray_extract.ray_extract`: actors each hold a model replica and write whole Zarr chunks of a store the driver
  created; only the driver commits progress and chunk hashes to the manifest, in chunk order. With a token-level
  layer (not chunk-aligned) actors return their batches and the driver writes them, as a local run would.
- `ray_sweep`: per-layer (probe, geometry, disentangle, truncate, quantize-embeddings, sae train: one checkpoint
  folder per task) and per-layer-pair (compare) Ray tasks that return `Result` rows; the driver concatenates them
  in local order and is the only one to write the results DB.

Without Ray: `memory` streams spectrum, participation ratio, anisotropy and the ridge / naive Bayes / LDA probes
from store chunks (memory bounded by the width), and `batched_probe` fits all CV folds × C values of a logistic
probe sweep as one batched problem.
"""

"""The executor and scale-out on Ray (optional extra `repscope[ray]`): extraction and analysis units, same code path
as local.

Nothing here imports ray at module import time; `cluster.require_ray()` does, on first use, and turns a missing
install into a one-line `RepscopeError` ("install repscope[ray]"). The local path never imports this package's
Ray-facing functions, so `import repscope.cli` and a local extract leave `ray` out of `sys.modules`.

- `ray_extract.ray_extract`: actors each hold a model replica and write whole Zarr chunks of a store the driver
  created; only the driver commits progress and chunk hashes to the manifest, in chunk order. With a token-level
  layer (not chunk-aligned) actors return their batches and the driver writes them, as a local run would.
- `executor`: the one executor. An analysis plans independent `Unit`s (a layer, a measure, a seed …) and
  combines their outputs; `LocalExecutor` runs the units here, `RayExecutor` as Ray tasks, outputs in plan order,
  so both record the same rows, and only the driver writes the results DB. `executor_for(ray)` is the only place a
  `--ray` value or a study step's `ray:` key picks one. This package knows no analysis.
"""

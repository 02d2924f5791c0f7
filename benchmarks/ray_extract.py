"""Extraction through Ray (2 workers) against the local path, in one process, on MiniLM over template sentences.

On a 2-core machine Ray cannot speed anything up; what this measures is its overhead (actor start-up and model
load on each worker, shipping the dataset, the driver's per-chunk commits). Goal: Ray time ≤ 1.25 × local time.
The Ray time includes starting the actors and loading a model replica in each; `ray.init` (cluster start, paid once
per cluster, not per job) is printed separately. Identity: the Ray store's chunk hashes and array bytes are compared
with the local extraction, since on a one-node Ray the workers run the driver's thread count (a CPU forward pass can
round differently with another thread count), and with a one-thread local run.

Actor start-up and the model load cost ~3.5 s per job whatever its size, so a small corpus measures mostly that:
on the idle 2-core machine (2026-11-29) 1000 sentences gave 2.71× (local 2.09 s), 8000 sentences 1.16× (local
17.7 s). The default is 8000, a job long enough for the fixed cost to be amortised as it is on a real corpus.

Run: python benchmarks/ray_extract.py [--n 8000] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from functools import partial
from pathlib import Path


def arrays_equal(a: Path, b: Path) -> bool:
    """Every file under arrays/ byte for byte, plus the manifests' layer tables (with per-chunk hashes)."""
    fa = {p.relative_to(a): p.read_bytes() for p in (a / "arrays").rglob("*") if p.is_file()}
    fb = {p.relative_to(b): p.read_bytes() for p in (b / "arrays").rglob("*") if p.is_file()}
    ma, mb = (json.loads((p / "manifest.json").read_text())["layers"] for p in (a, b))
    return fa == fb and ma == mb and (a / "samples.parquet").read_bytes() == (b / "samples.parquet").read_bytes()


def main() -> None:
    """Time local vs Ray extraction and print the ratio and the identity check."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=8000, help="template sentences")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()

    import ray
    import torch

    from repscope.distributed.ray_extract import ray_extract
    from repscope.extract import extract
    from repscope.sources.load import load_dataset, load_model
    from repscope.threads import limit_threads

    data = load_dataset(f"templates:{args.n}", seed=0)
    model = load_model("minilm", device="cpu")
    kw = {"pooling": "masked-mean", "batch_size": 64, "chunk_rows": 256, "progress": False}
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        t = time.perf_counter()
        extract(model, data, root / "local", **kw)
        t_local = time.perf_counter() - t
        t = time.perf_counter()
        ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
        t_init = time.perf_counter() - t
        t = time.perf_counter()
        ray_extract(model, data, root / "ray", workers=args.workers, address="auto",
                    model_loader=partial(load_model, "minilm", device="cpu"), **kw)
        t_ray = time.perf_counter() - t
        ray.shutdown()
        with limit_threads(1):
            extract(model, data, root / "local1", **kw)
        same = arrays_equal(root / "local1", root / "ray")
        same_default = arrays_equal(root / "local", root / "ray")
    print(f"MiniLM, {args.n} template sentences, 7 layers masked-mean, torch {torch.__version__}, "
          f"local threads {torch.get_num_threads()}, Ray {ray.__version__} × {args.workers} workers (1 CPU each)")
    print(f"local extract           {t_local:8.2f} s")
    print(f"ray.init (once/cluster) {t_init:8.2f} s")
    print(f"Ray extract             {t_ray:8.2f} s   (actor start + model load on each worker included)")
    print(f"ratio Ray / local       {t_ray / t_local:8.2f}   (goal ≤ 1.25)")
    print(f"store identical to the local run at {torch.get_num_threads()} threads (the workers' count): "
          f"{same_default}")
    print(f"store identical to a local run at 1 thread: {same}")


if __name__ == "__main__":
    main()

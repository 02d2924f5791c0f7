"""Extraction on Ray: the driver creates the store and commits; actors, one model replica each, write whole chunks.

The driver does everything a local `extract` does before the loop (checks, provenance, manifest-first creation under
the store's writer lock, the first batch to learn shapes and pooling modes). Rows are then planned as whole store
chunks, so no two writers ever touch one Zarr chunk file. An actor runs the same batches a local run would
(`batch_ranges`, never crossing a chunk), writes each layer's chunk, and returns the chunk's content hashes. Only the
driver advances `progress.rows_done` and records the hashes, in chunk order, by the same atomic manifest commit a
local run uses, so the finished store is byte-identical to a local one. A chunk whose actor dies is rerun on a fresh
actor (a chunk rewrite replaces the whole file), and a killed driver leaves a store that any rerun resumes.

Token-level layers (`--pooling none` on sequences) cannot be written that way: a layer's tokens live in one flat
array chunked every 8192 tokens, so a row chunk's tokens start and end inside token chunks its neighbours share, and
its offsets depend on every earlier row's length. A store with a token layer therefore runs in *driver-writes* mode:
actors still run the forward passes (the costly part) chunk by chunk, but return the batches, and the driver appends
them in chunk order through the same `StoreWriter.append` a local run uses (one writer, identical flushes), so the
store is byte-identical too. The driver holds at most `window` finished chunks waiting for an earlier one.

Test-only fault injection: `REPSCOPE_FAULT=ray-kill-chunk:<chunk>:<marker file>` makes the actor that first writes
a layer of that chunk (in driver-writes mode: that finishes its forward passes) SIGKILL itself (once: the marker
file records that it happened).
"""

from __future__ import annotations

import os
import signal
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from repscope.distributed.cluster import RayError, connect, remote_cause
from repscope.errors import ConfigError, DataError, RepscopeError
from repscope.extract.progress import make_progress
from repscope.extract.runner import batch_ranges, extract_provenance, resume_command, run_batch
from repscope.sources.datasets import Dataset
from repscope.sources.models import ModelAdapter
from repscope.store import RepStore, StoreWriter
from repscope.store.manifest import array_name, chunk_digests
from repscope.store.repstore import chunk_file
from repscope.store.writer import encode_rows, open_layer_array
from repscope.threads import limit_threads

IN_FLIGHT = 2  # chunks queued per actor, so an actor never idles while the driver commits


class ChunkWorker:
    """One model replica; `run_chunk(c)` extracts store chunk `c` and writes it to every layer array."""

    def __init__(self, model: ModelAdapter | Callable[[], ModelAdapter], data: Dataset, root: str,
                 names: list[str], *, pooling: str, modes: dict[str, str], allow_nonfinite: bool, chunk_rows: int,
                 batch_size: int, threads: int | None = None, fault: str | None = None, write: bool = True):
        self.model = model if isinstance(model, ModelAdapter) else model()
        self.data, self.root, self.names = data, Path(root), names
        self.pooling, self.modes, self.allow_nonfinite = pooling, dict(modes), allow_nonfinite
        self.chunk_rows, self.batch_size, self.threads, self.fault = chunk_rows, batch_size, threads, fault
        self.write = write
        self.keys = {name: array_name(name) for name in names}
        self.arrays = {name: open_layer_array(self.root, key) for name, key in self.keys.items()} if write else {}

    def run_chunk(self, c: int) -> tuple[int, int, Any]:
        """Extract rows of chunk `c` in the local run's batches; write them and return (c, end row, {layer: digests}),
        or in driver-writes mode return (c, end row, [batch, …]) for the driver to append."""
        n = len(self.data)
        start, end = c * self.chunk_rows, min((c + 1) * self.chunk_rows, n)
        batches = []
        with limit_threads(self.threads):
            for s, e in batch_ranges(start, end, self.chunk_rows, self.batch_size):
                batches.append(run_batch(self.model, self.data, self.names, s, e, self.pooling, dict(self.modes),
                                         self.allow_nonfinite))
        if not self.write:
            self._maybe_fault(c)
            return c, end, batches
        parts = {name: [b[name] for b in batches] for name in self.names}
        hashes: dict[str, tuple[str | None, str | None]] = {}
        for name in self.names:
            arr = self.arrays[name]
            arr[start:end] = encode_rows(torch.cat(parts[name]), _dtype_name(arr))
            self._maybe_fault(c)
            hashes[name] = chunk_digests(chunk_file(self.root / "arrays" / self.keys[name], c, arr.ndim))
        return c, end, hashes

    def _maybe_fault(self, c: int) -> None:
        if not self.fault or not self.fault.startswith("ray-kill-chunk:"):
            return
        _, chunk, marker = self.fault.split(":", 2)
        if int(chunk) != c:
            return
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
        os.kill(os.getpid(), signal.SIGKILL)


def _one_local_node(ray: Any) -> bool:
    """Whether the connected Ray cluster is a single node on this machine (a local Ray)."""
    try:
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        return len(nodes) == 1 and nodes[0].get("NodeManagerAddress") == ray.util.get_node_ip_address()
    except Exception:  # a client connection or a Ray without these calls: assume a remote cluster
        return False


def _dtype_name(arr: Any) -> str:
    """The manifest dtype a layer array stores (bfloat16 lives as uint16 bits)."""
    name = str(arr.dtype)
    return "bfloat16" if name == "uint16" else name


def ray_extract(model: ModelAdapter, data: Dataset, out: str | Path, layers: list[str] | str | None = None, *,
                pooling: str = "auto", batch_size: int = 64, dtype: str = "float32", chunk_rows: int = 256,
                overwrite: bool = False, allow_nonfinite: bool = False, progress: bool = True,
                seed: int | None = None, extra_provenance: dict[str, Any] | None = None, address: str = "auto",
                workers: int = 2, gpus_per_worker: float = 0.0, cpus_per_worker: float = 1.0,
                threads: int | None = None,
                model_loader: Callable[[], ModelAdapter] | None = None, max_retries: int = 3,
                window: int | None = None) -> RepStore:
    """`extract` on a Ray cluster with `workers` actors; the store is byte-identical to a local extraction.

    Each actor reserves `cpus_per_worker` CPUs and `gpus_per_worker` GPUs and runs torch with `threads` intra-op
    threads. A CPU forward pass can round differently with another thread count (MKL's GEMM does for a few small
    batch shapes), so bytes match a local run that used the same thread count (as a GPU run matches on the same GPU).
    The default is therefore this process's thread count when the cluster is one node on this machine (the store is
    then byte-identical to a local `extract` here, at the price of oversubscribing the cores), else Ray's default of
    one thread per reserved CPU.
    `model` is used on the driver (provenance, checks, the first batch); actors get `model_loader()` when given
    (e.g. load the model from its spec on the worker's GPU), else a pickled copy of `model`. The store folder must
    be on a filesystem every worker can reach. Errors and cleanup follow `extract`: bad input leaves no store, any
    other failure keeps the committed chunks for a resume (rerun with or without --ray).

    With a token-level layer the driver writes every chunk (see the module doc); `window` (default 2 per worker,
    at least 4) caps the chunks planned ahead of the next uncommitted one, i.e. the activations the driver may hold.
    """
    if batch_size < 1 or chunk_rows < 1:
        raise RepscopeError(f"batch size and chunk rows must be ≥ 1 (got {batch_size}, {chunk_rows})")
    if workers < 1:
        raise ConfigError(f"--workers {workers}: use at least 1 Ray worker")
    if gpus_per_worker < 0:
        raise ConfigError(f"--gpus-per-worker {gpus_per_worker}: use 0 (CPU) or a positive GPU share")
    window = max(4, IN_FLIGHT * workers) if window is None else window
    if window < 1:
        raise ConfigError(f"window {window}: plan at least 1 chunk ahead")
    names = model.select(layers)
    first = data.items(0, min(len(data), batch_size))
    model.check_items(first, data.name)
    prov = extract_provenance(model, data, names, pooling, seed, extra_provenance)
    ray = connect(address, num_gpus=gpus_per_worker)  # before the store exists: a bad cluster leaves nothing on disk
    actor_opts: dict[str, Any] = {}
    if threads is None and _one_local_node(ray):
        threads = torch.get_num_threads()  # a local run's count here: the same bytes as `extract`
        if "OMP_WAIT_POLICY" not in os.environ:  # workers × threads > cores: idle OpenMP threads sleep, not spin
            actor_opts["runtime_env"] = {"env_vars": {"OMP_WAIT_POLICY": "PASSIVE"}}
    writer = StoreWriter.create_or_resume(out, data.samples, prov, chunk_rows=chunk_rows, dtype=dtype,
                                          overwrite=overwrite, resume_command=resume_command())
    n = len(data)
    actors: list[Any] = []
    try:
        modes: dict[str, str] = {}
        batch = _first_batch(model, data, names, min(n, batch_size, chunk_rows), pooling, modes, allow_nonfinite)
        if not writer.manifest["layers"]:  # the same declaration as a local run's first batch
            writer.set_layers({k: ((tuple(v[0].shape[1:]), True) if isinstance(v, list)
                                   else (tuple(v.shape[1:]), False)) for k, v in batch.items()})
            writer.manifest["provenance"]["pooling_per_layer"] = modes
        del batch
        driver_writes = any(info["tokens"] for info in writer.manifest["layers"].values())
        root = str(Path(out).resolve())
        fault = os.environ.get("REPSCOPE_FAULT")
        source = ray.put(model_loader if model_loader is not None else model)
        data_ref = ray.put(data)
        cls = ray.remote(num_cpus=cpus_per_worker, num_gpus=gpus_per_worker or None, max_restarts=0,
                         **actor_opts)(ChunkWorker)

        def start() -> Any:
            actor = cls.remote(source, data_ref, root, names, pooling=pooling, modes=modes,
                               allow_nonfinite=allow_nonfinite, chunk_rows=chunk_rows, batch_size=batch_size,
                               threads=threads, fault=fault, write=not driver_writes)
            actors.append(actor)
            return actor

        with make_progress(disable=not progress) as bar:
            task = bar.add_task(f"extract {model.name} on Ray ×{workers}", total=n, completed=writer.rows_done)

            def commit(end: int, payload: Any) -> None:
                if driver_writes:
                    for b in payload:  # the local run's batches in order: append flushes at the same rows
                        writer.append(b)
                else:
                    writer.commit_chunk(end, payload)
                bar.update(task, completed=end)

            _schedule(ray, writer, [start() for _ in range(workers)], start, n, chunk_rows, max_retries, commit,
                      window=window if driver_writes else None)
        return writer.close()
    except RepscopeError:
        writer.abort(force=True)
        raise
    except Exception:
        writer.abort(force=True, keep_committed=True)
        raise
    finally:
        for actor in actors:
            ray.kill(actor, no_restart=True)
        writer.release()


def _first_batch(model: ModelAdapter, data: Dataset, names: list[str], rows: int, pooling: str,
                 modes: dict[str, str], allow_nonfinite: bool) -> dict[str, Any]:
    """Rows [0, rows) on the driver, failing like a local run's first batch; fills `modes`."""
    try:
        return run_batch(model, data, names, 0, rows, pooling, modes, allow_nonfinite)
    except RepscopeError:
        raise
    except Exception as err:
        if isinstance(err, MemoryError) or "out of memory" in str(err):
            raise
        first = (str(err).strip().splitlines() or [""])[0][:200]
        raise DataError(f"model '{model.name}' failed on the first batch of '{data.name}' ({type(err).__name__}: "
                        f"{first}); check that the data fits the model's input (shape, modality)") from err


def _schedule(ray: Any, writer: StoreWriter, actors: list[Any], start: Callable[[], Any], n: int, chunk_rows: int,
              max_retries: int, commit: Callable[[int, Any], None], window: int | None = None) -> None:
    """Run every uncommitted chunk on the actors, replace dead actors and rerun their chunks, and call
    `commit(end row, payload)` in chunk order; with `window`, no chunk ≥ next uncommitted + window is started."""
    died = tuple(getattr(ray.exceptions, name) for name in ("RayActorError", "WorkerCrashedError",
                                                              "ActorUnavailableError", "NodeDiedError")
                 if hasattr(ray.exceptions, name))
    next_chunk = writer.rows_done // chunk_rows
    pending = deque(range(next_chunk, -(-n // chunk_rows)))
    inflight: dict[Any, tuple[Any, int]] = {}
    done: dict[int, tuple[int, Any]] = {}
    failures: dict[int, int] = {}
    while pending or inflight:
        for actor in actors:
            busy = sum(1 for a, _ in inflight.values() if a is actor)
            while pending and busy < IN_FLIGHT and (window is None or pending[0] < next_chunk + window):
                c = pending.popleft()
                inflight[actor.run_chunk.remote(c)] = (actor, c)
                busy += 1
        ready, _ = ray.wait(list(inflight), num_returns=1)
        for ref in ready:
            actor, c = inflight.pop(ref)
            try:
                _, end, payload = ray.get(ref)
            except died as err:
                failures[c] = failures.get(c, 0) + 1
                if failures[c] > max_retries:
                    raise RayError(f"chunk {c} failed on {failures[c]} Ray workers (last: {type(err).__name__}); "
                                   "rerun the same command to resume from the committed chunks") from None
                pending.appendleft(c)
                if actor in actors:  # first failure seen from this actor: replace it
                    actors[actors.index(actor)] = start()
                continue
            except Exception as err:
                cause = remote_cause(err)
                if isinstance(cause, RepscopeError):
                    raise cause from None
                raise
            done[c] = (end, payload)
        while next_chunk in done:
            end, payload = done.pop(next_chunk)
            commit(end, payload)
            next_chunk += 1

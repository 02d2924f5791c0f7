"""One executor for every analysis: a step plans independent units, an executor runs them, the step combines them.

An analysis that can run in parallel declares

- `plan(...) -> list[Unit]`: one unit per layer, layer pair, seed …; a `Unit` names a top-level function and its
  (picklable) arguments, so it runs the same in this process or on a Ray worker;
- optionally `combine(parts) -> Result`: what the driver does with the units' outputs, in plan order (the default,
  `concat_results`, concatenates `Result`s).

`LocalExecutor` runs the units here, one after the other; `RayExecutor` runs each as a Ray task (retried if its
worker dies) and returns the outputs in plan order, so both give the same rows. Only the driver records them in
the results DB (DuckDB has one writer). `executor_for(ray)` is the one place a `--ray` value (CLI) or a step's
`ray:` key (study) turns into an executor; nothing else branches on Ray.

Units receive stores as `RepStore` objects: a store pickles without its open arrays and reopens them, with their
checks, on the worker, which must reach the store's folder (a shared filesystem on a cluster).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import BeforeValidator

from repscope.errors import ConfigError, RepscopeError


@dataclass(frozen=True)
class Unit:
    """One independent piece of work: `fn(*args, **kwargs)`, `fn` a top-level (importable) function."""

    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    label: str = ""

    def run(self) -> Any:
        """Run the unit in this process."""
        return self.fn(*self.args, **dict(self.kwargs))


def concat_results(parts: Sequence[Any]) -> Any:
    """The default `combine`: the units' `Result`s concatenated in plan order (rows and artifacts)."""
    from repscope.results import Result

    out = Result()
    for part in parts:
        out.extend(part)
    return out


class Executor:
    """Runs a plan's units and returns their outputs in plan order."""

    name = "executor"

    def map(self, units: Sequence[Unit]) -> list[Any]:
        """Each unit's output, in the order of `units`."""
        raise NotImplementedError

    def run(self, units: Sequence[Unit], combine: Callable[[list[Any]], Any] = concat_results) -> Any:
        """`combine(self.map(units))`: the step's result."""
        return combine(self.map(units))

    def extract(self, model: Any, data: Any, out: Any, layers: Any = None, *, device: str = "auto",
                workers: int = 2, **kw: Any) -> Any:
        """Extract `layers` of `model` (a `load_model` spec, or a loaded `ModelAdapter`) on `data` into the store
        `out` (`repscope.extract.extract` options in `kw`: pooling, batch_size, dtype, chunk_rows, overwrite, …);
        returns the `RepStore`. `workers`: model replicas where the executor spreads them (Ray)."""
        raise NotImplementedError


class LocalExecutor(Executor):
    """Runs units in this process, in order."""

    name = "local"

    def map(self, units: Sequence[Unit]) -> list[Any]:
        """Each unit run here, in order."""
        return [unit.run() for unit in units]

    def extract(self, model: Any, data: Any, out: Any, layers: Any = None, *, device: str = "auto",
                workers: int = 2, **kw: Any) -> Any:
        """`repscope.extract.extract` in this process, the model loaded on `device` (`workers` is not used)."""
        from repscope.extract import extract
        from repscope.sources.load import load_model

        m = load_model(model, device=device) if isinstance(model, str) else model
        return extract(m, data, out, layers, **kw)

    def __repr__(self) -> str:
        return "LocalExecutor()"


class RayExecutor(Executor):
    """Runs each unit as a Ray task on `address` ('auto', 'local' or a cluster address), `num_gpus` GPUs each."""

    name = "ray"

    def __init__(self, address: str | None = "auto", *, num_gpus: float = 0.0, num_cpus: float = 1.0):
        self.address = address
        self.num_gpus = num_gpus
        self.num_cpus = num_cpus

    def map(self, units: Sequence[Unit]) -> list[Any]:
        """Each unit as a Ray task (retried up to 3 times if its worker dies); outputs in the order of `units`.
        A task's RepscopeError is re-raised as itself (one line for the CLI) after the other tasks are cancelled."""
        if not units:
            return []
        from repscope.distributed.cluster import connect

        ray = connect(self.address, num_gpus=self.num_gpus)
        task = ray.remote(num_cpus=self.num_cpus, num_gpus=self.num_gpus or None, max_retries=3)(_run_unit)
        return _gather(ray, [task.remote(unit) for unit in units])

    def extract(self, model: Any, data: Any, out: Any, layers: Any = None, *, device: str = "auto",
                workers: int = 2, **kw: Any) -> Any:
        """`ray_extract` with `workers` actors, each reserving `num_gpus` GPUs and `num_cpus` CPUs; the store is
        byte-identical to a local extraction. With a spec, the driver loads the model on the CPU (it only checks,
        plans and commits) and each actor loads its own on `device`; a loaded adapter travels pickled."""
        from functools import partial

        from repscope.distributed.ray_extract import ray_extract
        from repscope.sources.load import load_model

        loader = partial(load_model, model, device=device) if isinstance(model, str) else None
        m = load_model(model, device="cpu") if isinstance(model, str) else model
        return ray_extract(m, data, out, layers, address=self.address, workers=workers,
                           gpus_per_worker=self.num_gpus, cpus_per_worker=self.num_cpus, model_loader=loader, **kw)

    def __repr__(self) -> str:
        return f"RayExecutor({self.address!r}, num_gpus={self.num_gpus:g})"


def _run_unit(unit: Unit) -> Any:
    return unit.run()


def _gather(ray: Any, refs: list[Any]) -> list[Any]:
    """ray.get, re-raising a task's RepscopeError as itself; on a failure the other tasks are cancelled and their
    outcomes collected, so Ray prints no 'unhandled error' for them later."""
    from repscope.distributed.cluster import remote_cause

    try:
        return ray.get(refs)
    except Exception as err:
        _drain(ray, refs)
        cause = remote_cause(err)
        if isinstance(cause, RepscopeError):
            raise cause from None
        raise


def _drain(ray: Any, refs: list[Any]) -> None:
    """Cancel every task of `refs` still running and collect (discard) each outcome."""
    for ref in refs:
        try:
            ray.cancel(ref)
        except Exception:  # already finished, or not cancellable: its outcome is collected below
            pass
    for ref in refs:
        try:
            ray.get(ref)
        except Exception:
            pass


def executor_for(ray: str | None = None, *, num_gpus: float = 0.0) -> Executor:
    """The executor a `--ray` value (or a study step's `ray:` key) asks for: None runs here, anything else on Ray."""
    if ray is None:
        return LocalExecutor()
    return RayExecutor(ray, num_gpus=num_gpus)


def check_ray_param(value: Any) -> str | None:
    """A study step's `ray` key: None (run locally), 'auto', 'local' or a cluster address such as ray://head:10001,
    checked as `--ray` is (ray installed, a well-formed address that accepts a connection) when the study file
    loads, before any extraction."""
    from repscope.distributed.cluster import check_address

    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"ray must be auto, local or a cluster address such as ray://head:10001 (omit it to run "
                         f"locally), got {value!r}")
    try:
        return check_address(value)
    except RepscopeError as err:  # RayError is no ValueError: as a ConfigError pydantic reports it with the step
        raise ConfigError(str(err)) from None


RayParam = Annotated[str | None, BeforeValidator(check_ray_param)]


def driver_budget(max_memory: int | str | None) -> int:
    """`max_memory` resolved to bytes on the driver, so every unit uses the driver's budget (the default is a share of
    the RAM available when it is computed; each worker computing its own could stream or subsample differently from
    a local run)."""
    from repscope.budget import resolve_budget

    return resolve_budget(max_memory)


__all__ = ["Executor", "LocalExecutor", "RayExecutor", "RayParam", "Unit", "check_ray_param", "concat_results",
           "driver_budget", "executor_for"]

"""Connecting to Ray: `--ray auto` (a running cluster, else a local one), `--ray local`, or `--ray ADDRESS`."""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

from repscope.errors import ConfigError, RepscopeError


class RayError(RepscopeError):
    """Ray is missing, unreachable, or a distributed run failed beyond its retries."""


def require_ray() -> ModuleType:
    """Import ray, or raise a one-line RayError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise RayError("--ray needs the ray package; install repscope[ray] (pip install 'repscope[ray]')") from None
    return ray


def connect(address: str | None = "auto", **init_kwargs: Any) -> ModuleType:
    """Return the ray module connected to a cluster; reuse a connection this process already has.

    `auto`: the cluster named by RAY_ADDRESS or started with `ray start`, else a new local one; `local`: always a
    new local one; anything else is a cluster address such as `ray://head:10001` or `10.0.0.5:6379`.
    """
    ray = require_ray()
    if ray.is_initialized():
        return ray
    if address is not None and not str(address).strip():
        raise ConfigError("--ray needs a value: auto, local, or a cluster address such as ray://head:10001")
    opts: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, **init_kwargs}
    try:
        if address in (None, "local"):
            ray.init(**opts)
        elif address == "auto":
            try:
                ray.init(address="auto", **opts)
            except ConnectionError:
                if os.environ.get("RAY_ADDRESS"):
                    raise
                ray.init(**opts)
        else:
            ray.init(address=address, **opts)
    except ConnectionError as err:
        first = (str(err).strip().splitlines() or [""])[0][:200]
        raise RayError(f"cannot reach the Ray cluster at '{address}' ({first}); start it with `ray start --head` "
                       "or pass its address to --ray") from None
    return ray


def remote_cause(err: BaseException) -> BaseException:
    """The exception a Ray task raised (Ray wraps it in a RayTaskError), else `err` itself."""
    cause = getattr(err, "cause", None)
    return cause if isinstance(cause, BaseException) else err

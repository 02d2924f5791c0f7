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


PROBE_TIMEOUT_S = 5.0  # a cluster address must accept a TCP connection within this (no Ray call can hang on it)
_USAGE = "use auto, local, or a cluster address HOST:PORT (e.g. 10.0.0.5:6379) or ray://HOST:PORT"


def _host_port(address: str) -> tuple[str, int]:
    """(host, port) of 'HOST:PORT', 'ray://HOST:PORT' or '[IPv6]:PORT'; ConfigError naming the address otherwise."""
    rest = address.removeprefix("ray://")
    host, sep, port = rest.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536 or any(c.isspace() or c in "/@?#"
                                                                                      for c in host):
        raise ConfigError(f"--ray '{address}' is not a Ray address; {_USAGE}")
    return host, int(port)


def check_address(address: str | None) -> str | None:
    """A `--ray` value checked before any work: a cluster address well formed (with the client extra for ray://)
    and accepting a TCP connection within `PROBE_TIMEOUT_S` (so an address where nothing listens fails in seconds
    instead of hanging in `ray.init`), then the ray package installed. None (run locally) passes through; `auto`
    with RAY_ADDRESS set checks that address. One-line ConfigError / RayError otherwise."""
    import importlib.util

    if address is None:
        return None
    if not isinstance(address, str) or not address.strip():
        raise ConfigError(f"--ray needs a value; {_USAGE}")
    address = address.strip()
    target = os.environ.get("RAY_ADDRESS", "").strip() if address == "auto" else address
    if target not in ("", "auto", "local"):
        _probe(target)
    if importlib.util.find_spec("ray") is None:
        raise RayError("--ray needs the ray package; install repscope[ray] (pip install 'repscope[ray]')")
    return address


def _probe(target: str) -> None:
    """Refuse a malformed cluster address, a ray:// one without the client extra, and one where nothing accepts a
    TCP connection within `PROBE_TIMEOUT_S`."""
    import importlib.util
    import socket

    host, port = _host_port(target)
    if target.startswith("ray://") and importlib.util.find_spec("grpc") is None:
        raise RayError(f"--ray '{target}': a ray:// address needs the Ray client extra; install it with "
                       "pip install 'ray[client]', or give the cluster's GCS address HOST:PORT")
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S) as sock:
            grpc = _speaks_grpc(sock)
    except OSError as err:
        why = f"no answer within {PROBE_TIMEOUT_S:g} s" if isinstance(err, TimeoutError) else \
            f"unknown host '{host}'" if isinstance(err, socket.gaierror) else (err.strerror or str(err)).lower()
        raise RayError(f"cannot reach the Ray cluster at '{target}' ({why}); start it with `ray start --head` or "
                       "pass the head node's address to --ray") from None
    if not grpc:
        raise RayError(f"'{target}' answers but is no Ray cluster (no gRPC reply within {PROBE_TIMEOUT_S:g} s); give "
                       "the head node's GCS address (HOST:6379 by default) or ray://HOST:10001 for the Ray client")


_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])  # + an empty SETTINGS frame


def _speaks_grpc(sock: Any) -> bool:
    """Whether the server on `sock` speaks HTTP/2 as every Ray endpoint (GCS, Ray client) does, being gRPC: it
    answers the client preface with a SETTINGS frame (frame type 4). Another service (a web server, ssh) does
    not, and `ray.init` would wait on it for minutes. With RAY_USE_TLS the check is skipped (TLS comes first)."""
    if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
        return True
    sock.sendall(_H2_PREFACE)
    head = b""
    while len(head) < 9:
        part = sock.recv(9 - len(head))
        if not part:
            break
        head += part
    return len(head) == 9 and head[3] == 4


def local_gpus() -> int:
    """GPUs this machine shows to a local Ray (CUDA devices torch can see; 0 without CUDA)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def check_gpus(num_gpus: float, available: float, where: str) -> None:
    """Refuse asking each worker for `num_gpus` GPUs where only `available` exist (the tasks would wait forever)."""
    if num_gpus > 0 and num_gpus > available:
        raise RayError(f"--gpus-per-worker {num_gpus:g} asks for GPUs but {where} has {available:g} GPUs; use "
                       "--gpus-per-worker 0 (CPU workers) or a cluster with GPUs")


def connect(address: str | None = "auto", *, num_gpus: float = 0.0, **init_kwargs: Any) -> ModuleType:
    """Return the ray module connected to a cluster; reuse a connection this process already has.

    `auto`: the cluster named by RAY_ADDRESS or started with `ray start`, else a new local one; `local`: always a
    new local one; anything else is a cluster address such as `ray://head:10001` or `10.0.0.5:6379`, checked with
    `check_address` first. `num_gpus` (per task or actor) must fit the GPUs the cluster has: checked on this
    machine before a local Ray starts, and against the cluster's resources after connecting.
    """
    ray = require_ray()
    if ray.is_initialized():
        check_gpus(num_gpus, ray.cluster_resources().get("GPU", 0), "the connected Ray cluster")
        return ray
    address = check_address(address)
    if num_gpus > 0 and (address == "local" or (address in (None, "auto") and not os.environ.get("RAY_ADDRESS")
                                                and not _running_cluster())):
        check_gpus(num_gpus, local_gpus(), "this machine")  # no GPU asked: no process scan, no CUDA probe
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
    if num_gpus > 0:
        try:
            check_gpus(num_gpus, ray.cluster_resources().get("GPU", 0), f"the Ray cluster at '{address}'")
        except RayError:
            ray.shutdown()
            raise
    return ray


def _running_cluster() -> bool:
    """Whether `ray start` left a cluster on this machine for `auto` to join (Ray's own lookup; no connection)."""
    try:
        from ray._private.services import find_gcs_addresses

        return bool(find_gcs_addresses())
    except Exception:  # a Ray version without the helper: assume none (the post-connect check still applies)
        return False


def remote_cause(err: BaseException) -> BaseException:
    """The exception a Ray task raised (Ray wraps it in a RayTaskError), else `err` itself."""
    cause = getattr(err, "cause", None)
    return cause if isinstance(cause, BaseException) else err

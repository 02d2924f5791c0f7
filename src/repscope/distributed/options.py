"""Typer options shared by the commands that can run on Ray (importing this never imports ray)."""

from __future__ import annotations

import typer

RAY_HELP = ("Run on Ray: 'auto' (a running cluster, else a local one), 'local', or a cluster address such as "
            "ray://head:10001; the store must be on a filesystem every worker reaches. Needs repscope\\[ray].")



def _check_ray(value: str | None) -> str | None:
    """--ray callback: the address checked (and a cluster address probed) while options are parsed, before any work."""
    from repscope.distributed.cluster import check_address

    return check_address(value)


RayOption = typer.Option(None, "--ray", metavar="auto|local|ADDRESS", callback=_check_ray, help=RAY_HELP)
WorkersOption = typer.Option(2, "--workers", min=1, help="With --ray: actors, each holding one model replica.")
GpusPerWorkerOption = typer.Option(0.0, "--gpus-per-worker", min=0.0,
                                   help="With --ray: GPUs each worker (task or actor) reserves (0 = CPU only).")

"""Helpers for the reliability suite: run the real CLI in a subprocess, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def cli_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """os.environ plus offline hub flags, unbuffered output, and `env` on top."""
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1",
            **(env or {})}


def run_cli(*args: str | Path, cwd: str | Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `python -m repscope.cli ARGS` in a subprocess; returns the CompletedProcess (text stdout/stderr)."""
    return subprocess.run([sys.executable, "-m", "repscope.cli", *map(str, args)], cwd=cwd, env=cli_env(env),
                          capture_output=True, text=True, timeout=timeout)


def run_main(*args: str | Path) -> subprocess.CompletedProcess:
    """Run `repscope ARGS` in this process (much faster than a subprocess on a busy machine): the same `main()`
    entry point, its exit code, stdout and stderr captured, returned as a CompletedProcess."""
    import contextlib
    import io

    from repscope.cli import main

    out, err, argv = io.StringIO(), io.StringIO(), sys.argv
    code = 0
    sys.argv = ["repscope", *map(str, args)]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = argv
    return subprocess.CompletedProcess(sys.argv, code, out.getvalue(), err.getvalue())


@pytest.fixture
def cli():
    """The `run_cli` helper as a fixture (no import needed)."""
    return run_cli


@pytest.fixture(scope="session")
def mlp_file(tmp_path_factory) -> Path:
    """An (untrained, seed-0) digits MLP saved as safetensors: `repscope extract FILE digits` runs it quickly."""
    from repscope.sources.zoo.mlp import build_digits_mlp, save_mlp

    return save_mlp(build_digits_mlp(seed=0), tmp_path_factory.mktemp("zoo") / "mlp.safetensors")

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


@pytest.fixture
def token_store(tmp_path, monkeypatch):
    """A token-level store of 30 sentences (1–5 tokens each) in many small chunks: (store, per-row tensors, lengths)."""
    import numpy as np
    import pandas as pd
    import torch

    from repscope.store import StoreWriter
    from repscope.store import writer as writer_mod

    monkeypatch.setattr(writer_mod, "TOKEN_CHUNK", 10)  # many small token chunks
    lengths = np.random.default_rng(1).integers(1, 6, size=30)
    toks = [torch.randn(int(t), 4) for t in lengths]
    w = StoreWriter.create_or_resume(tmp_path / "t", pd.DataFrame({"id": np.arange(30)}), {"model": "m"},
                                     chunk_rows=8)
    w.set_layers({"tok": ((4,), True)})
    for s in range(0, 30, 8):
        w.append({"tok": toks[s : s + 8]})
    return w.close(), toks, lengths

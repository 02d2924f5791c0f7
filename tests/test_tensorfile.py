"""The one atomic safetensors writer: round trip, metadata, and a failed write leaves the old file and no temp."""

from __future__ import annotations

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from repscope import __version__
from repscope.tensorfile import MARKER, save_tensors


def test_round_trip_with_metadata(tmp_path):
    t = {"w": torch.arange(6.0).reshape(2, 3).T, "b": torch.ones(2, requires_grad=True)}  # non-contiguous, grad
    p = save_tensors(tmp_path / "sub" / "m.safetensors", t, metadata={"kind": "x"})
    back = load_file(str(p))
    assert torch.equal(back["w"], t["w"]) and torch.equal(back["b"], torch.ones(2))
    with safe_open(str(p), framework="pt") as f:
        assert f.metadata() == {"kind": "x", MARKER: __version__}  # the marker that proves repscope wrote it
    assert sorted(x.name for x in p.parent.iterdir()) == ["m.safetensors"]


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    import safetensors.torch as st

    p = save_tensors(tmp_path / "m.safetensors", {"a": torch.zeros(3)})
    before = p.read_bytes()

    def broken(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(st, "save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        save_tensors(p, {"a": torch.ones(3)})
    assert p.read_bytes() == before
    assert [x.name for x in tmp_path.iterdir()] == ["m.safetensors"]

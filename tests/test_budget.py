"""Memory budget (`repscope.budget`): size parsing, the default from available RAM, fit arithmetic, and the
`--max-memory` / `max_memory` plumbing of the probe, compare and geometry commands and study steps."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from repscope import budget
from repscope.errors import ConfigError


@pytest.mark.parametrize(("text", "expected"), [
    ("512MB", 512 * 10**6), ("4G", 4 * 10**9), ("0.5GiB", 2**29), ("1024", 1024), (" 3 mib ", 3 * 2**20),
    ("2Gi", 2 * 2**30), ("1e9", 10**9), ("1.5kb", 1500), ("7TB", 7 * 10**12), (2048, 2048), (1.5e6, 1_500_000),
])
def test_parse_size(text, expected):
    assert budget.parse_size(text) == expected


@pytest.mark.parametrize("bad", ["", "lots", "5XB", "-1GB", "0", "0MB", "GB", "1.2.3G", "inf", True, -5, 0])
def test_parse_size_refuses_bad_sizes_in_one_line(bad):
    with pytest.raises(ConfigError) as err:
        budget.parse_size(bad)
    msg = str(err.value)
    assert "\n" not in msg and "2GB" in msg  # says what was wrong and how to write it


def test_available_memory_reads_meminfo_then_sysconf(tmp_path, monkeypatch):
    info = tmp_path / "meminfo"
    info.write_text("MemTotal:       16000000 kB\nMemFree:         1000000 kB\nMemAvailable:    8000000 kB\n")
    assert budget._meminfo_available(info) == 8_000_000 * 1024
    assert budget._meminfo_available(tmp_path / "missing") is None
    monkeypatch.setattr(budget, "_cgroup_headroom", lambda: None)
    monkeypatch.setattr(budget, "_meminfo_available", lambda: 8_000_000 * 1024)
    assert budget.available_memory() == 8_000_000 * 1024
    assert budget.default_budget() == 2_000_000 * 1024  # 25%
    assert budget.resolve_budget(None) == 2_000_000 * 1024
    assert budget.resolve_budget("1GB") == 10**9
    monkeypatch.setattr(budget, "_meminfo_available", lambda: None)  # no /proc: sysconf's available pages
    monkeypatch.setattr(budget.os, "sysconf", lambda name: {"SC_AVPHYS_PAGES": 1000, "SC_PAGE_SIZE": 4096}[name])
    assert budget.available_memory() == 4096 * 1000
    assert budget.default_budget() == 64 << 20  # floor for tiny machines
    monkeypatch.setattr(budget, "_cgroup_headroom", lambda: 2000)  # a container limit below the host's RAM
    assert budget.available_memory() == 2000


def test_cgroup_headroom(tmp_path):
    (tmp_path / "memory.max").write_text("1000000\n")
    (tmp_path / "memory.current").write_text("250000\n")
    assert budget._cgroup_headroom(tmp_path) == 750_000
    (tmp_path / "memory.max").write_text("max\n")
    assert budget._cgroup_headroom(tmp_path) is None
    assert budget._cgroup_headroom(tmp_path / "nowhere") is None
    (tmp_path / "memory.max").write_text("1000000\n")
    (tmp_path / "memory.current").write_text("1000000\n")  # full, but 400 kB of it reclaimable page cache
    (tmp_path / "memory.stat").write_text("anon 600000\ninactive_file 400000\nactive_file 0\n")
    assert budget._cgroup_headroom(tmp_path) == 400_000


def test_a_full_container_caps_the_default(monkeypatch):
    monkeypatch.setattr(budget, "_meminfo_available", lambda: 8 << 30)
    monkeypatch.setattr(budget, "_cgroup_headroom", lambda: 0)  # no headroom left: not "no limit"
    assert budget.available_memory() == 0
    assert budget.default_budget() == 64 << 20  # the floor


@pytest.mark.skipif(not __import__("os").path.exists("/proc/meminfo"), reason="needs /proc/meminfo")
def test_default_budget_is_a_quarter_of_memavailable(monkeypatch):
    monkeypatch.setattr(budget, "_cgroup_headroom", lambda: None)  # this host's own /proc/meminfo, no container cap
    kb = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemAvailable:"))
    got = budget.default_budget()
    assert got == pytest.approx(max(64 << 20, kb * 1024 / 4), rel=0.05)


def test_fit_arithmetic():
    # 1000 rows × 100 float32 values × 2 copies = 800 000 bytes
    assert budget.layer_bytes(1000, 100, copies=2) == 800_000
    assert budget.fits(1000, 100, 800_000, copies=2)
    assert not budget.fits(1001, 100, 800_000, copies=2)
    assert budget.rows_that_fit(100, 800_000, copies=2) == 1000
    assert budget.rows_that_fit(100, 10, copies=2) == 1  # never zero rows
    # 96² float64 × 4 accumulators (294 912 B) + one 1024-row float64 chunk, twice (1 572 864 B)
    assert budget.stream_fits(96, 1_867_776, chunk_rows=1024) and not budget.stream_fits(96, 1_867_775, chunk_rows=1024)


def test_study_params_check_max_memory():
    from pydantic import ValidationError

    from repscope.geometry.study import GeometryParams
    from repscope.probe.study import ProbeParams
    from repscope.similarity.study import CompareParams

    for model in (ProbeParams, CompareParams, GeometryParams):
        assert model(max_memory="2GB").max_memory == "2GB"
        assert model(max_memory=10**9).max_memory == 10**9
        assert model().max_memory is None
        with pytest.raises(ValidationError, match="not understood"):
            model(max_memory="lots")


def _invoke(*args):
    from repscope.cli import app

    return CliRunner().invoke(app, list(args), env={"COLUMNS": "250"})


def test_list_needs_no_store():
    from repscope.geometry.measures import MEASURES
    from repscope.similarity.registry import measures

    r = _invoke("compare", "--list")
    assert r.exit_code == 0, r.output
    assert {m.name for m in measures(None)} <= {line.split()[0] for line in r.output.splitlines() if line.strip()}
    r = _invoke("geometry", "--list")
    assert r.exit_code == 0, r.output
    assert set(MEASURES.names()) <= {line.split()[0] for line in r.output.splitlines() if line.strip()}
    for cmd in ("compare", "geometry"):  # without --list the store is still required
        r = _invoke(cmd)  # a usage error (the `repscope` entry point prints it as one line, exit 2)
        assert r.exit_code != 0 and "Missing argument" in str(r.exception) + r.output


def test_cli_max_memory_option(tmp_path):
    for cmd in ("probe", "compare", "geometry"):
        r = _invoke(cmd, "--help")
        assert "--max-memory" in r.output and "available RAM" in r.output
        r = _invoke(cmd, str(tmp_path), "--max-memory", "lots")
        assert isinstance(r.exception, ConfigError) and "lots" in str(r.exception)

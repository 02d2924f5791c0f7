"""The README's Quickstart runs as written: every line of its bash block, in order, in a fresh folder (exit code 0
each), and its Python snippet. Only the data sizes shrink (`templates:2000` → `templates:200`, `digits` → the first
300 digits, `shared:` files → their first 100 rows), so the README cannot rot again."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from tests.conftest import require_shared

README = Path(__file__).resolve().parents[1] / "README.md"
SMALL = {"templates:2000": "templates:200", "templates:600": "templates:200", "digits": "digits@300"}


def quickstart_block(lang: str) -> str:
    """The first ```lang block under the README's `## Quickstart` heading."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Quickstart", 1)[1].split("\n## ", 1)[0]
    m = re.search(rf"```{lang}\n(.*?)```", section, re.S)
    assert m, f"no ```{lang} block in the README's Quickstart"
    return m.group(1)


def quickstart_commands() -> list[list[str]]:
    """Each command of the bash block as argv (comments dropped, `a && b` split into two commands)."""
    commands = []
    for line in quickstart_block("bash").splitlines():
        argv = shlex.split(line, comments=True)
        while argv:
            cut = argv.index("&&") if "&&" in argv else len(argv)
            commands.append(argv[:cut])
            argv = argv[cut + 1:]
    return commands


def small(arg: str) -> str:
    """The argument with its data made small (see the module docstring)."""
    if arg in SMALL:
        return SMALL[arg]
    if arg.startswith("shared:") and "@" not in arg:
        return f"{arg}@100"
    return arg


def small_study(src: Path, dst: Path) -> None:
    """The study file with the same small data specs."""
    study = yaml.safe_load(src.read_text(encoding="utf-8"))
    for store in study["stores"]:
        store["data"] = small(store["data"])
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(yaml.safe_dump(study, sort_keys=False), encoding="utf-8")


def test_quickstart_block_parses_into_repscope_commands():
    """The parser sees what a shell would: every command is `repscope …`, and the stores the later commands read
    are created by earlier ones in the block."""
    commands = quickstart_commands()
    assert len(commands) >= 20 and all(c[0] == "repscope" for c in commands), commands
    made = {c[c.index("-o") + 1] for c in commands if c[1] == "extract"}
    used = {a for c in commands for a in c if a.startswith("runs/")}
    assert used <= made, f"the Quickstart reads stores it never creates: {sorted(used - made)}"
    dbs = {a for c in commands for a in c if a.endswith(".duckdb")}
    assert dbs <= {c[c.index("--db") + 1] for c in commands if "--db" in c}


@pytest.mark.slow
@pytest.mark.shared
def test_every_quickstart_command_runs_in_order(tmp_path, monkeypatch):
    from tests.reliability.conftest import run_main

    for rel in (("images", "cifar10_test_a.npz"), ("text", "stsb", "dev.tsv"), ("models",)):
        require_shared(*rel)
    small_study(README.parent / "examples" / "study.yaml", tmp_path / "examples" / "study.yaml")
    monkeypatch.chdir(tmp_path)
    for argv in quickstart_commands():
        args = [small(a) for a in argv[1:]]
        r = run_main(*args)
        assert r.returncode == 0, f"`{shlex.join(argv)}` exited {r.returncode}: {r.stderr[-2000:]}"
    assert (tmp_path / "report.html").is_file() and (tmp_path / "v1_vs_v2.html").is_file()
    assert (tmp_path / "runs" / "example").is_dir()  # the study's workdir, relative to the study file


def test_quickstart_python_snippet_runs(tmp_path, monkeypatch):
    from repscope import ResultsDB

    code = quickstart_block("python").replace("templates:2000", "templates:200")
    monkeypatch.chdir(tmp_path)
    ns: dict = {}
    exec(compile(code, "README.md (Quickstart, Python)", "exec"), ns)  # noqa: S102 - the README's own snippet
    assert tuple(ns["x"].shape) == (200, 384) and len(ns["y"]) == 200
    assert ns["start"] == 0 and ns["block"].shape[1] == 384  # the chunk loop ran (one chunk at 200 rows)
    rows = ResultsDB(tmp_path / "repscope.duckdb").frame()
    assert list(rows["analysis"]) == ["my-analysis"] and float(rows["value"].iloc[0]) == 0.9

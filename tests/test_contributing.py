"""CONTRIBUTING.md works as written.

Every code block of a recipe is marked by the HTML comment before it,
`<!-- recipe: NAME file: PATH mode: MODE [anchor: LINE] -->`, MODE being `create` (a new file), `append` (to the end
of a file), `after` (new lines after the one line equal to LINE) or `replace` (LINE replaced by the block). For each
recipe, `test_recipe_works_as_written` copies the repository (the files git tracks or would track, as they are in the
working tree; no .venv, no caches) to a temporary folder, applies the recipe's blocks literally, and runs there, with
this interpreter and `PYTHONPATH=<copy>/src` (so the copy's package is the one imported, which it checks):

- `make lint`'s two checks: `ruff check src tests benchmarks` and `lint-imports` (the copy's pyproject contracts);
- `pytest` on the tests the recipe adds plus the generic tests that iterate what the recipe extends (the registry
  property and estimator checks, the registry and plugin tests, the CLI-options-equal-params check, the public API).

Not the whole suite per recipe: on a two-core machine that would take an hour; the tests listed in `CHECKS` are those
a new registry entry or plugin reaches (tests that iterate registries or the plugin list, or pin their built-ins).
All recipes together take about 2.5 minutes on two cores (marked `slow`; `make test` runs them).
The third-party recipe is a package outside the repository: it is installed with pip into a temporary folder
(`--target`, no index, no dependencies: the virtualenv is left alone), and its own test runs with that folder on the
path, so the `repscope.plugins` entry point is found as in a real installation.

The fast tests below check the guide's text: every registry in the package has a recipe, every `repscope.…` name and
file path it mentions exists, every `repscope …` command line uses options the command has, and every study snippet
uses its step's param names.
"""

from __future__ import annotations

import importlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "CONTRIBUTING.md"
BIN = Path(sys.executable).parent
MARK = re.compile(r"<!-- recipe: (?P<recipe>[\w-]+) file: (?P<file>\S+) mode: (?P<mode>create|append|after|replace)"
                  r"(?: anchor: (?P<anchor>.*?))? -->\n```[\w-]*\n(?P<code>.*?)\n```", re.S)


@dataclass(frozen=True)
class Check:
    """What a recipe extends (`registry`: "module:NAME", or None), the tests that run after applying it beside the
    test files it creates (pytest node ids or files, one process), and `select`: (file, -k expression) runs for
    parametrized tests (each its own process)."""

    registry: str | None
    tests: tuple[str, ...] = ()
    select: tuple[tuple[str, str], ...] = ()


REG = "tests/test_registry.py::test_built_in_registries_keep_their_names_and_aliases"
REAL = "tests/test_registries_real.py::"
BUILTINS = REAL + "test_every_registry_keeps_its_builtins_when_a_user_registers_first"  # the population rule
ERRORS = REAL + "test_unknown_metric_scheme_engine_and_learner_are_one_line_errors"
SKLEARN = "tests/test_sklearn_compat.py"
CHECKS = {
    "similarity": Check("repscope.similarity.registry:MEASURES", (
        "tests/test_similarity_properties.py", REG, BUILTINS)),
    "geometry": Check("repscope.geometry.measures:MEASURES", (
        "tests/test_geometry_invariances.py", REG, BUILTINS, "tests/test_budget.py::test_list_needs_no_store")),
    "probe": Check("repscope.probe.registry:PROBES", (REG, BUILTINS),
                   ((SKLEARN, "LeastSquaresProbe or every_registered_estimator"),)),
    "sae": Check("repscope.dictionary.modules:ARCHS", (REG, BUILTINS)),
    "quantizer": Check("repscope.dictionary.quantize:METHODS", (REG, BUILTINS),
                       ((SKLEARN, "UniformQuantizer or every_registered_estimator"),)),
    "learner": Check("repscope.learn.registry:LEARNERS", (
        "tests/test_registries.py::test_learner_registered_before_first_lookup_keeps_builtins", BUILTINS, ERRORS),
        (("tests/test_learn_plugin.py", "linear_ae"),)),
    "disentanglement": Check("repscope.disentangle.suite:DISENTANGLEMENT_METRICS", (
        REAL + "test_toy_disentanglement_metric_from_api_store_cli_and_study", BUILTINS, ERRORS)),
    "dci": Check("repscope.disentangle.dci_score:DCI_ENGINES", (
        REAL + "test_toy_dci_engine_is_dispatched_through_the_registry", BUILTINS, ERRORS)),
    "scheme": Check("repscope.compress.quantize_embeddings:SCHEMES", (
        REAL + "test_toy_embedding_scheme_from_api_cli_and_study", BUILTINS, ERRORS)),
    "compat": Check("repscope.compat.transforms:TRANSFORMS", ("tests/test_compat_criterion.py", BUILTINS)),
    "analysis": Check(None, ("tests/test_plugins.py", "tests/test_params_declared.py", "tests/test_public_api.py",
                             "tests/test_executor.py::test_no_ray_branch_and_no_analysis_import_outside_the_executor")),
    "third-party": Check(None),
}
OUTSIDE = {"third-party"}  # recipes whose files belong to a package outside the repository


@dataclass(frozen=True)
class Block:
    recipe: str
    file: str
    mode: str
    anchor: str | None
    code: str


def recipes() -> dict[str, list[Block]]:
    """The guide's marked blocks by recipe, in the order they appear."""
    out: dict[str, list[Block]] = {}
    for m in MARK.finditer(GUIDE.read_text(encoding="utf-8")):
        block = Block(m["recipe"], m["file"], m["mode"], m["anchor"].strip() if m["anchor"] else None, m["code"])
        out.setdefault(block.recipe, []).append(block)
    return out


def apply(block: Block, root: Path) -> None:
    """Apply one marked block to the tree at `root`, literally; a missing or repeated anchor is an error."""
    path = root / block.file
    code = block.code + "\n"
    if block.mode == "create":
        assert not path.exists(), f"{block.file} exists already; the recipe says create"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(code, encoding="utf-8")
        return
    text = path.read_text(encoding="utf-8")
    if block.mode == "append":
        gap = "\n\n\n" if path.suffix == ".py" else "\n\n"
        path.write_text(text.rstrip("\n") + gap + code, encoding="utf-8")
        return
    lines = text.splitlines(keepends=True)
    hits = [i for i, line in enumerate(lines) if line.strip() == block.anchor]
    assert len(hits) == 1, f"{block.file}: anchor line {block.anchor!r} found {len(hits)} times, not once"
    i = hits[0]
    lines[i:i + 1] = [lines[i], code] if block.mode == "after" else [code]
    path.write_text("".join(lines), encoding="utf-8")


TREE = ("src", "tests", "benchmarks", "docs", "examples", ".ci", "pyproject.toml", "Makefile", "README.md",
        "CONTRIBUTING.md", ".gitignore")  # what is copied when there is no git checkout
JUNK = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".ruff_cache", ".cache", "artifacts",
                              "*.duckdb*")


def copy_repository(dest: Path) -> Path:
    """The repository as the working tree has it under `dest`: the files git tracks or would track (a file deleted in
    the working tree is not copied); without a git checkout, the source folders without caches."""
    r = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True)
    if r.returncode != 0:
        for rel in TREE:
            if (ROOT / rel).is_dir():
                shutil.copytree(ROOT / rel, dest / rel, ignore=JUNK)
            elif (ROOT / rel).is_file():
                dest.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / rel, dest / rel)
        return dest
    for rel in r.stdout.decode().split("\0"):
        src = ROOT / rel
        if not rel or not src.is_file() or rel.startswith(".venv/"):
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / rel)
    return dest


def run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: int = 600) -> str:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    print(f"  {time.perf_counter() - t0:5.1f} s  {' '.join(c if len(c) < 60 else '…' for c in cmd[-4:])}")
    assert r.returncode == 0, f"{' '.join(cmd)} failed in {cwd}:\n{r.stdout[-6000:]}\n{r.stderr[-3000:]}"
    return r.stdout


# ---- the guide's text ---------------------------------------------------------------------------------------------
def test_every_recipe_is_checked_and_every_registry_has_one():
    found = recipes()
    assert set(found) == set(CHECKS), "a recipe without CHECKS entry (or an entry without recipe)"
    refs = set()
    for path in sorted((ROOT / "src" / "repscope").rglob("*.py")):
        module = ".".join(path.relative_to(ROOT / "src").with_suffix("").parts)
        for m in re.finditer(r"^([A-Z_][A-Z0-9_]*)\s*:\s*Registry\[.*?\]\s*=\s*Registry\(", path.read_text(), re.M):
            refs.add(f"{module}:{m.group(1)}")
    assert refs == {c.registry for c in CHECKS.values() if c.registry}, "every registry has exactly one recipe"
    for name, blocks in found.items():  # at most two files plus a test (and the import contracts of pyproject.toml)
        if name in OUTSIDE:
            continue
        files = {b.file for b in blocks if not b.file.startswith("tests/")} - {"pyproject.toml"}
        assert len(files) <= 2, f"recipe {name} adds or edits {sorted(files)}"
        edited = {b.file for b in blocks if b.mode != "create"}
        assert all((ROOT / f).is_file() for f in edited), f"recipe {name} edits a file that does not exist"


def _guide_code() -> list[str]:
    """Inline code spans and code-block lines of the guide."""
    text = GUIDE.read_text(encoding="utf-8")
    blocks = re.findall(r"```[\w-]*\n(.*?)\n```", text, re.S)
    inline = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
    return inline + [line for b in blocks for line in b.splitlines()]


def test_every_name_and_path_the_guide_mentions_exists():
    text = GUIDE.read_text(encoding="utf-8")
    assert "DESIGN.md" not in text
    created = {b.file for bs in recipes().values() for b in bs if b.mode == "create"}
    code = _guide_code()
    for span in code:
        for path in re.findall(r"\b((?:src|tests|docs)/[\w./-]+\.(?:py|md|toml))\b", span):
            assert (ROOT / path).exists() or path in created, f"CONTRIBUTING.md names {path}, which does not exist"
    new_modules = {".".join(Path(f).with_suffix("").parts[1:]) for f in created if f.startswith("src/")}
    from repscope.analyses import ENTRY_POINT_GROUP

    for span in code:
        for name in set(re.findall(r"\b(repscope(?:\.\w+)+)", span)) - {ENTRY_POINT_GROUP, "repscope.duckdb"}:
            parts = name.split(".")
            for cut in range(len(parts), 0, -1):  # the longest importable prefix, then attributes
                module = ".".join(parts[:cut])
                if module in new_modules:
                    break
                try:
                    obj = importlib.import_module(module)
                except ImportError:
                    continue
                for attr in parts[cut:]:
                    assert hasattr(obj, attr), f"CONTRIBUTING.md names {name}: {module} has no {attr}"
                    obj = getattr(obj, attr)
                break
            else:
                pytest.fail(f"CONTRIBUTING.md names {name}, which does not import")


def test_command_lines_and_study_snippets_match_the_cli_and_params():
    import typer

    from repscope.analyses import study_steps
    from repscope.cli import app

    root = typer.main.get_command(app)
    steps = study_steps()
    new_steps = {"norms", "centroid"}  # the steps recipes add
    checked = 0
    for span in _guide_code():
        for line in re.findall(r"(?:^|\$ )(repscope [^#]*)", span.strip()):
            words = shlex.split(line)[1:]
            cmd = root
            while words and getattr(cmd, "commands", None) and words[0] in cmd.commands:
                cmd = cmd.commands[words.pop(0)]
            if getattr(cmd, "commands", None):
                continue  # a command that a recipe adds (repscope norms)
            opts = {"--help"} | {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}
            for w in words:
                flag = w.split("=")[0]
                assert not flag.startswith("-") or flag in opts, f"{line!r}: {flag} is not an option of this command"
            checked += 1
        for run_name, params in re.findall(r"\{run: (\w+), [^{}]*params: \{([^{}]*)", span):
            keys = re.findall(r"(\w+):", params)
            if run_name in new_steps:
                continue
            fields = steps[run_name].model().model_fields
            assert set(keys) <= set(fields), f"{span!r}: {run_name} takes no param {set(keys) - set(fields)}"
            checked += 1
    assert checked >= 10


# ---- each recipe, applied to a copy of the repository ----------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("name", list(CHECKS))
def test_recipe_works_as_written(name, tmp_path):
    blocks = recipes()[name]
    copy = copy_repository(tmp_path / "repo")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_ADDOPTS")}
    env |= {"PYTHONPATH": str(copy / "src"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
            "REPSCOPE_DB": str(tmp_path / "default.duckdb")}
    py = [sys.executable]
    t0 = time.perf_counter()
    if name in OUTSIDE:
        pytest.importorskip("setuptools", reason="pip builds the outside package with this venv's setuptools")
        outside, site = tmp_path / "outside", tmp_path / "site"
        for b in blocks:
            apply(b, outside)
        run([*py, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-build-isolation",
             "--disable-pip-version-check", "--target", str(site), str(outside)], tmp_path, env)
        env["PYTHONPATH"] = f"{site}{os.pathsep}{copy / 'src'}"
        tests = [str(outside / b.file) for b in blocks if b.file.startswith("tests/")]
        cwd = outside
    else:
        for b in blocks:
            apply(b, copy)
        tests = [b.file for b in blocks if b.mode == "create" and b.file.startswith("tests/")]
        cwd = copy
    where = run([*py, "-c", "import repscope; print(repscope.__file__)"], cwd, env).strip()
    assert Path(where).is_relative_to(copy / "src"), f"the copy must be imported, not {where}"
    run([str(BIN / "ruff"), "check", "--no-cache", "src", "tests", "benchmarks"], copy, env)
    run([str(BIN / "lint-imports"), "--no-cache"], copy, env)
    assert tests, f"recipe {name} adds no test"
    test_cmd = [*py, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider"]
    run([*test_cmd, *tests, *CHECKS[name].tests], cwd, env)
    for target, expr in CHECKS[name].select:
        run([*test_cmd, target, "-k", expr], copy, env)
    print(f"recipe {name}: {time.perf_counter() - t0:.1f} s")

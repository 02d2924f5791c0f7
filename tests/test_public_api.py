"""The public API is what it claims to be: every name in a package's `__all__` imports at runtime, resolves for a
type checker (mypy, over generated `from repscope.<pkg> import <name>` files), is declared once, and is never
shadowed by a submodule of the same name."""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from repscope.lazy import type_checking_imports

SRC = Path(__file__).resolve().parents[1] / "src"
ROOT = SRC / "repscope"


def _declared_all(init: Path) -> list[str] | None:
    """The literal `__all__` of a package `__init__.py` (None when it has none)."""
    for node in ast.parse(init.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return list(ast.literal_eval(node.value))
    return None


def _packages() -> dict[str, list[str]]:
    """`{dotted package: __all__}` for every package under src/repscope that declares a literal `__all__`."""
    found = {}
    for init in sorted(ROOT.rglob("__init__.py")):
        names = _declared_all(init)
        if names is not None:
            found[".".join(init.parent.relative_to(SRC).parts)] = names
    return found


PACKAGES = _packages()


def _submodules(package: str) -> set[str]:
    folder = SRC.joinpath(*package.split("."))
    return ({p.stem for p in folder.glob("*.py") if p.stem != "__init__"}
            | {p.name for p in folder.iterdir() if (p / "__init__.py").is_file()})


def test_packages_are_found():
    for pkg in ("repscope", "repscope.geometry", "repscope.probe", "repscope.disentangle", "repscope.compress",
                "repscope.store", "repscope.results"):
        assert pkg in PACKAGES, f"{pkg} has no literal __all__"


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_no_export_is_named_like_a_submodule(package):
    """A submodule with the same name as an exported function rebinds the package attribute when it is imported
    (the collision `repscope.lazy` used to paper over)."""
    clash = sorted(set(PACKAGES[package]) & _submodules(package))
    assert not clash, f"{package} exports {clash}, which are also submodule names: rename the submodules"


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_all_matches_the_type_checking_imports(package):
    """Lazy packages declare each name once, as a `TYPE_CHECKING` import, and list exactly those in `__all__`."""
    init = SRC.joinpath(*package.split("."), "__init__.py")
    source = init.read_text(encoding="utf-8")
    if "attach(__name__)" not in source:
        return  # an eager package: its imports are its declarations
    exports = type_checking_imports(source, package)
    public = {name for name, (module, _) in exports.items() if module != package}  # subpackages stay off __all__
    defined_here = {"__version__"} & set(PACKAGES[package])
    assert set(PACKAGES[package]) - defined_here == public
    assert len(PACKAGES[package]) == len(set(PACKAGES[package])), f"{package}.__all__ lists a name twice"


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_every_name_imports_at_runtime(package):
    """`from repscope.<pkg> import <name>` works for every `__all__` name, gives the object its submodule defines
    (never a module), and `dir()` lists it; the lazy package caches it afterwards."""
    mod = importlib.import_module(package)
    init_source = SRC.joinpath(*package.split("."), "__init__.py").read_text(encoding="utf-8")
    origins = type_checking_imports(init_source, package)
    for name in PACKAGES[package]:
        value = getattr(mod, name)
        assert not isinstance(value, types.ModuleType), f"{package}.{name} is a module, not the exported object"
        assert name in dir(mod)
        if name in origins:
            module, attr = origins[name]
            assert value is getattr(importlib.import_module(module), attr)
            assert name in vars(mod)  # cached: the next lookup is a plain attribute
    assert not hasattr(mod, "not_a_public_name")


def test_type_checking_imports_reads_only_the_guarded_block():
    """Absolute, relative and aliased imports under `if TYPE_CHECKING:` (or `typing.TYPE_CHECKING`) are exports;
    imports elsewhere are not."""
    source = ("import typing\nfrom typing import TYPE_CHECKING\nfrom a.b import hidden\n"
              "if TYPE_CHECKING:\n    from a.b.c import f, g as h\n    from .d import k\n    from .. import sub\n"
              "if typing.TYPE_CHECKING:\n    from ..e import m\nelse:\n    from a.x import not_me\n")
    assert type_checking_imports(source, "a.b") == {
        "f": ("a.b.c", "f"), "h": ("a.b.c", "g"), "k": ("a.b.d", "k"), "sub": ("a", "sub"), "m": ("a.e", "m")}


def test_lazy_import_stays_cheap():
    """Importing every lazy package (and resolving nothing) loads no heavy dependency."""
    lazy = [p for p in sorted(PACKAGES)
            if "attach(__name__)" in SRC.joinpath(*p.split("."), "__init__.py").read_text(encoding="utf-8")]
    assert {"repscope", "repscope.geometry", "repscope.probe", "repscope.similarity"} <= set(lazy)
    code = (f"import sys\nfor p in {lazy!r}: __import__(p)\n"
            "print(','.join(m for m in ('torch', 'numpy', 'pandas', 'sklearn', 'zarr', 'duckdb') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "", f"importing {lazy} loaded {out.stdout.strip()}"


def test_type_checker_resolves_every_name(tmp_path):
    """mypy resolves every `__all__` name (one generated file per package: `from repscope.<pkg> import <names>`);
    a control file importing a name that does not exist must be reported, so the check can fail."""
    pytest.importorskip("mypy", reason="mypy is in the dev extra: pip install -e '.[dev]'")
    files = []
    for package, names in sorted(PACKAGES.items()):
        path = tmp_path / f"check_{package.replace('.', '_')}.py"
        path.write_text(f"from {package} import {', '.join(names)}  # noqa\n", encoding="utf-8")
        files.append(path.name)
    (tmp_path / "check_control.py").write_text("from repscope.geometry import not_a_public_name\n", encoding="utf-8")
    files.append("check_control.py")
    env = {**os.environ, "MYPYPATH": str(SRC)}
    cmd = [sys.executable, "-m", "mypy", "--follow-imports=silent", "--ignore-missing-imports", "--no-site-packages",
           "--show-error-codes", "--no-error-summary", "--no-color-output", "--cache-dir", str(tmp_path / "cache"),
           *files]
    out = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    errors = [line for line in out.stdout.splitlines() if ": error:" in line]
    control = [e for e in errors if e.startswith("check_control.py")]
    assert len(control) == 1 and "not_a_public_name" in control[0] and "[attr-defined]" in control[0], out.stdout
    unresolved = [e for e in errors if not e.startswith("check_control.py")]
    assert not unresolved, "mypy cannot resolve public names:\n" + "\n".join(unresolved) + out.stderr

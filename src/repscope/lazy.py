"""PEP 562 lazy exports for repscope's packages, so `import repscope.<pkg>` (and CLI start-up) stays cheap.

A package imports each public name under `if TYPE_CHECKING:` (what type checkers and IDEs read), lists it in a
literal `__all__`, and in the `else:` branch binds `__getattr__, __dir__ = attach(__name__)`. On the first access
to a name, `attach`'s `__getattr__` reads those `TYPE_CHECKING` imports from the package's own source (once),
imports the one submodule that holds the name and caches it in the package.
Keeping `__getattr__` out of the type checkers' view means a misspelt name is still an error for them.

No exported name may equal a submodule name (importing the submodule would rebind it); `tests/test_public_api.py`
checks that, and that `__all__` matches the `TYPE_CHECKING` imports.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def type_checking_imports(source: str, package: str) -> dict[str, tuple[str, str]]:
    """`{exported name: (absolute module, name in that module)}` from the `from … import …` statements inside the
    top-level `if TYPE_CHECKING:` blocks of `source` (relative imports resolved against `package`)."""
    import ast

    exports: dict[str, tuple[str, str]] = {}
    for node in ast.parse(source).body:
        test = node.test if isinstance(node, ast.If) else None
        if not (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING"
                or isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"):
            continue
        for stmt in node.body:
            if not isinstance(stmt, ast.ImportFrom):
                continue
            module = stmt.module or ""
            if stmt.level:
                base = package.rsplit(".", stmt.level - 1)[0] if stmt.level > 1 else package
                module = f"{base}.{module}" if module else base
            for alias in stmt.names:
                exports[alias.asname or alias.name] = (module, alias.name)
    return exports


def attach(package: str) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """PEP 562 `(__getattr__, __dir__)` for `package` (call it from the package's `__init__` with `__name__`): each
    name imported under the package's `if TYPE_CHECKING:` loads from its submodule on first use and is cached."""
    table: dict[str, tuple[str, str]] = {}

    def exports() -> dict[str, tuple[str, str]]:
        if not table:
            module = sys.modules[package]
            source = module.__spec__.loader.get_source(package) if module.__spec__ and module.__spec__.loader else None
            if source is None:
                raise ImportError(f"cannot read the source of '{package}' to resolve its lazy exports")
            table.update(type_checking_imports(source, package))
        return table

    def __getattr__(name: str) -> Any:
        target = exports().get(name)
        if target is None:
            raise AttributeError(f"module '{package}' has no attribute '{name}'")
        module, attr = target
        value = (importlib.import_module(f"{module}.{attr}") if module == package
                 else getattr(importlib.import_module(module), attr))
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        module = sys.modules[package]
        return sorted(set(vars(module)) | set(getattr(module, "__all__", ())))

    return __getattr__, __dir__

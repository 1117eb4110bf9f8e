"""The pure engine stays pure: every module of ``shipyard.engine`` (and its subpackages)
is parsed, not imported, and its direct imports are checked against two rules.

1. Nothing that does I/O, keeps threads or reads the clock or randomness: time is an
   input, ids are passed in.
2. Nothing outside a short list of pure standard-library modules, the engine itself,
   ``shipyard.model`` and ``shipyard.errors``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import shipyard

ENGINE = Path(shipyard.__file__).parent / "engine"

FORBIDDEN = (
    "shipyard.store",
    "shipyard.server",
    "shipyard.runner",
    "shipyard.notify",
    "shipyard.traffic",
    "shipyard.provision",
    "sqlalchemy",
    "socket",
    "threading",
    "asyncio",
    "subprocess",
    "urllib",
    "http",
    "os",
    "time",
    "random",
    "uuid",
)

ALLOWED = (
    "__future__",
    "abc",
    "bisect",
    "collections",
    "dataclasses",
    "enum",
    "functools",
    "itertools",
    "math",
    "operator",
    "typing",
    "shipyard.engine",
    "shipyard.model",
    "shipyard.errors",
)


def _within(name: str, packages: tuple[str, ...]) -> str | None:
    """The entry of ``packages`` that ``name`` is or lies under, if any."""
    return next((p for p in packages if name == p or name.startswith(p + ".")), None)


def _module_name(path: Path, root: Path = ENGINE.parent.parent) -> str:
    """``path``'s dotted module name, ``root`` being the directory holding ``shipyard``."""
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, root: Path = ENGINE.parent.parent) -> Iterator[tuple[int, str]]:
    """(line, module) for every import statement of the file, relative ones resolved."""
    package = _module_name(path, root)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            yield node.lineno, base
            # ``from shipyard import store`` imports the module shipyard.store.
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"


def _engine_modules() -> list[Path]:
    return sorted(ENGINE.rglob("*.py"))


def test_the_engine_package_is_found() -> None:
    names = {_module_name(p) for p in _engine_modules()}
    assert {"shipyard.engine", "shipyard.engine.machine", "shipyard.engine.launch"} <= names
    assert "shipyard.engine.strategies.traffic_shift" in names


@pytest.mark.parametrize("path", _engine_modules(), ids=_module_name)
def test_engine_module_imports_nothing_impure(path: Path) -> None:
    module = _module_name(path)
    bad = [
        f"{module} imports {name} (line {line})"
        for line, name in _imports(path)
        if _within(name, FORBIDDEN)
    ]
    assert not bad, "the pure engine must not do I/O:\n" + "\n".join(bad)


@pytest.mark.parametrize("path", _engine_modules(), ids=_module_name)
def test_engine_module_imports_only_the_allowed(path: Path) -> None:
    module = _module_name(path)
    bad = [
        f"{module} imports {name} (line {line})"
        for line, name in _imports(path)
        # ``from shipyard import model`` yields "shipyard" then "shipyard.model".
        if name != "shipyard" and not _within(name, ALLOWED)
    ]
    assert not bad, "outside what the engine may import:\n" + "\n".join(bad)


@pytest.mark.parametrize(
    ("source", "caught"),
    [
        ("import os.path", ["os"]),
        ("from time import monotonic", ["time"]),
        ("from shipyard import store", ["shipyard.store"]),
        ("from shipyard.store.deployments import load", ["shipyard.store"]),
        ("from ...runner import core", ["shipyard.runner"]),
        ("def f() -> None:\n    import threading", ["threading"]),
        ("from shipyard.engine import plan", []),
        ("from .. import plan", []),
        ("import operating_system", []),
    ],
)
def test_the_walker_catches_every_spelling(tmp_path: Path, source: str, caught: list[str]) -> None:
    """A forbidden import is caught however it is written (absolute, relative, nested
    in a function), and a name that merely begins like a forbidden one is not."""
    module = tmp_path / "shipyard" / "engine" / "strategies" / "probe.py"
    module.parent.mkdir(parents=True)
    module.write_text(source + "\n")
    hits = {_within(name, FORBIDDEN) for _, name in _imports(module, tmp_path)}
    assert sorted(hit for hit in hits if hit) == caught

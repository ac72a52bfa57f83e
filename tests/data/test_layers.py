"""detcli.data sits below models, engine, inference, the CLI and plugin loading: it imports none
of them, and no import cycle runs through it (or through plugin loading)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import detcli

PACKAGE = Path(detcli.__file__).parent
ABOVE_DATA = (
    "detcli.builtin_components",
    "detcli.cli",
    "detcli.engine",
    "detcli.inference",
    "detcli.models",
    "detcli.plugins",
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
DATA_MODULES = sorted(name for name in MODULES if name.startswith("detcli.data"))


def _imports(path: Path) -> set[str]:
    """Every detcli module `path` imports, at any depth (inside functions and TYPE_CHECKING)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.update(f"{node.module}.{a.name}" for a in node.names)
            found.add(node.module)
    return {m for m in map(_known, found) if m is not None}


def _known(name: str) -> str | None:
    """The module `name` is or lives in (`detcli.data.builder.build_dataset` -> its module)."""
    if not name.startswith("detcli"):
        return None
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _is_above(module: str) -> bool:
    return any(module == top or module.startswith(top + ".") for top in ABOVE_DATA)


def test_data_modules_import_nothing_from_above_data():
    offenders = {
        name: sorted(m for m in _imports(MODULES[name]) if _is_above(m)) for name in DATA_MODULES
    }
    assert {name: found for name, found in offenders.items() if found} == {}


def test_no_import_cycle_runs_through_data_or_plugin_loading():
    graph = {name: _imports(path) - {name} for name, path in MODULES.items()}

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            node = todo.pop()
            if node == goal:
                return True
            if node not in seen:
                seen.add(node)
                todo.extend(graph.get(node, ()))
        return False

    watched = [*DATA_MODULES, "detcli.plugins", "detcli.builtin_components"]
    cycles = [(a, b) for a in watched for b in graph[a] if reaches(b, a)]  # a -> b -> ... -> a
    assert cycles == []


def test_importing_every_data_module_loads_nothing_above_it():
    """In a fresh interpreter: what the modules really pull in, lazy package attributes too."""
    code = (
        "import importlib, sys\n"
        f"for name in {DATA_MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(sorted(m for m in sys.modules if m.startswith({ABOVE_DATA!r})))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr

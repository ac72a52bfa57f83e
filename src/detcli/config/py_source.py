"""Reading one MMDetection-style `.py` config by evaluating its syntax tree, never running it.

Allowed: literals, `dict(...)` with keyword arguments and `**`, list/tuple/dict displays (tuples
become lists) with `*`/`**` unpacking, names assigned earlier in the file, `+` (and arithmetic on
numbers), unary minus, `_base_ = ...`, `_base_.name` and `{{_base_.name}}` references to the
merged bases, and `{{ fileDirname }}`-style predefined variables in strings, with mmengine's
`Config.fromfile` meaning: values are copied when a name is used (no late binding), names that
start with `__` are dropped. Everything else is refused by `py_rules` with file:line:column.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from detcli.config.merge import DELETE_KEY
from detcli.config.origins import ConfigPath, Origin, Origins, format_path
from detcli.config.py_eval import BASE_KEY, Evaluator, Value, at, kind, rooted
from detcli.config.py_rules import lazy_config_error, syntax_error
from detcli.errors import ConfigError


class PySource:
    """One parsed `.py` config: its `_base_` list first, its values once the bases are merged."""

    def __init__(self, path: Path, text: str):
        self.path = path
        self.source = str(path)
        try:
            self.tree = ast.parse(text, filename=self.source)
        except SyntaxError as exc:
            raise syntax_error(self.source, exc) from None
        _refuse_lazy_config(self.source, self.tree)
        self._base_stmt = _first_base_assignment(self.tree)

    @classmethod
    def read(cls, path: Path) -> PySource:
        """Read and parse `path` (syntax errors and lazy configs are refused here)."""
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"Cannot read config file {path}: {exc}") from None
        return cls(path, text)

    def base_entry(self) -> tuple[dict[str, Any], Origins]:
        """`{"_base_": ...}` as written (empty when the file has no bases), with its origins."""
        if self._base_stmt is None:
            return {}, {}
        value, origins = Evaluator(self.path, names={}, base=None).value(self._base_stmt.value)
        return {BASE_KEY: value}, rooted(origins, (BASE_KEY,), self._origin(self._base_stmt))

    def evaluate(
        self, base: dict[str, Any] | None, base_origins: Origins | None = None
    ) -> tuple[dict[str, Any], Origins]:
        """The file's own keys (and `_base_` as written); `base` is the merged bases, if any."""
        data, origins = self.base_entry()
        names: dict[str, Value] = {}
        evaluator = Evaluator(self.path, names, base, base_origins or {})
        for stmt in self.tree.body:
            if stmt is self._base_stmt or _is_docstring(stmt) or isinstance(stmt, ast.Pass):
                continue
            evaluator.statement(stmt)
        for name, (value, value_origins) in names.items():
            if name.startswith("__"):  # mmengine drops them: private helpers of the file
                continue
            data[name] = value
            origins.update(rooted(value_origins, (name,), value_origins[()]))
        return data, origins

    def _origin(self, node: ast.AST) -> Origin:
        return Origin(self.source, getattr(node, "lineno", None))


def read_py_file(
    path: Path, base: dict[str, Any] | None = None, base_origins: Origins | None = None
) -> tuple[dict[str, Any], Origins]:
    """Evaluate `path` against the merged `base` data; return its data and origins (file:line)."""
    return PySource.read(path).evaluate(base, base_origins)


def check_py_merge(
    own: dict[str, Any], base: dict[str, Any], own_origins: Origins, path: ConfigPath = ()
) -> None:
    """Apply mmengine's rules for a .py child's dict over an inherited value that is no dict.

    Without `_delete_=True` mmengine refuses it; with it the dict replaces the value, so the
    marker is dropped here (detcli's merge would otherwise ask for its removal).
    """
    for key, value in own.items():
        if not isinstance(value, dict) or key not in base:
            continue
        inherited = base[key]
        if value.get(DELETE_KEY) is True:
            if not isinstance(inherited, dict):
                del value[DELETE_KEY]
                own_origins.pop((*path, key, DELETE_KEY), None)
            continue
        if isinstance(inherited, dict):
            check_py_merge(value, inherited, own_origins, (*path, key))
            continue
        raise ConfigError(
            f"{at(own_origins, (*path, key))}: {format_path((*path, key))} is a dict here but "
            f"{kind(inherited)} in the base files, so it cannot be merged into it (mmengine "
            "refuses this too). Add `_delete_=True` to the dict to replace the inherited value."
        )


def _first_base_assignment(tree: ast.Module) -> ast.Assign | None:
    for stmt in tree.body:
        if (
            isinstance(stmt, ast.Assign)
            and len(stmt.targets) == 1
            and isinstance(stmt.targets[0], ast.Name)
            and stmt.targets[0].id == BASE_KEY
        ):
            return stmt
    return None


def _refuse_lazy_config(source: str, tree: ast.Module) -> None:
    """mmengine's new-style configs are named as such, before their imports are refused."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id == "read_base":
            raise lazy_config_error(source, node)
        if isinstance(node, ast.ImportFrom) and any(a.name == "read_base" for a in node.names):
            raise lazy_config_error(source, node)


def _is_docstring(stmt: ast.stmt) -> bool:
    return (
        isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, ast.Constant)
        and isinstance(stmt.value.value, str)
    )

"""Evaluating the expressions and statements of a `.py` config into plain data with origins.

The data language: literals, `dict(...)` with keywords and `**`, list/tuple/dict displays (tuples
become lists) with `*`/`**` unpacking, names assigned earlier, `+` on strings and lists,
arithmetic on numbers, unary minus, and `_base_.name` / `{{_base_.name}}` reads of the merged
bases. Anything else is refused by `py_rules` with file:line:column.
"""

from __future__ import annotations

import ast
import copy
import os
import re
from pathlib import Path
from typing import Any

from detcli.config.origins import ConfigPath, Origin, Origins, format_path, subtree
from detcli.config.py_rules import custom_imports_error, refuse, where
from detcli.errors import ConfigError
from detcli.suggest import did_you_mean

BASE_KEY = "_base_"

# A value with the origins of it and its parts, keyed by paths relative to the value.
Value = tuple[Any, Origins]

_PREDEFINED = re.compile(
    r"\{\{\s*(fileDirname|fileBasename|fileBasenameNoExtension|fileExtname)\s*\}\}"
)
_ENV_VAR = re.compile(r"\{\{['\"]?\s*\$\w+")
_QUOTED_BASE_REF = re.compile(r"\{\{\s*_base_\.")
_MAX_POWER = 64  # `2 ** 10**9` would hang the reader


class Evaluator:
    """Evaluates one file's statements and expressions; assigned names land in `names`."""

    def __init__(
        self,
        path: Path,
        names: dict[str, Value],
        base: dict[str, Any] | None,
        base_origins: Origins | None = None,
    ):
        self.path = path
        self.source = str(path)
        self.names = names
        self.base = base  # the merged base files, read through `_base_`
        self.base_origins = base_origins or {}

    # statements ----------------------------------------------------------------------------
    def statement(self, stmt: ast.stmt) -> None:
        """Run one top-level statement: only assignments (and bare expressions) are allowed."""
        if isinstance(stmt, ast.Assign):
            value = self.value(stmt.value)
            for target in stmt.targets:
                self._bind(target, value, stmt)
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            self._bind(stmt.target, self.value(stmt.value), stmt)
        elif isinstance(stmt, ast.Expr):
            self.value(stmt.value)  # a bare expression sets nothing, but must be allowed
        else:
            refuse(self.source, stmt)

    def _bind(self, target: ast.expr, value: Value, stmt: ast.stmt) -> None:
        if isinstance(target, ast.Name):
            if target.id == "custom_imports":
                raise custom_imports_error(self.source, target)
            if target.id == BASE_KEY:
                refuse(
                    self.source,
                    target,
                    "a second `_base_ = ...` assignment",
                    "Give all base files in one `_base_ = [...]` list.",
                )
            data, origins = value
            # a name holds its own copy: a later change elsewhere never moves it (no late binding)
            origins = {**origins, (): Origin(self.source, stmt.lineno)}
            self.names[target.id] = (copy.deepcopy(data), origins)
        elif isinstance(target, (ast.Tuple, ast.List)):
            items, origins = value
            if not isinstance(items, list) or len(items) != len(target.elts):
                raise ConfigError(
                    f"{where(self.source, target)}: cannot unpack {kind(items)} into "
                    f"{len(target.elts)} names. Assign each name on its own line."
                )
            for i, (elt, item) in enumerate(zip(target.elts, items, strict=True)):
                self._bind(elt, (item, _reroot(origins, (i,))), stmt)
        elif isinstance(target, (ast.Attribute, ast.Subscript)):
            refuse(
                self.source,
                target,
                "assigning into a dict (`x.key = ...` or `x[key] = ...`)",
                "Write `x = dict(key=...)`: a child file's dict merges into the inherited one.",
            )
        else:
            refuse(self.source, target)

    # expressions ---------------------------------------------------------------------------
    def value(self, node: ast.expr) -> Value:
        """Evaluate an expression node into plain data with relative origins."""
        here = Origin(self.source, node.lineno)
        method = getattr(self, f"_{type(node).__name__}", None)
        if method is None:
            refuse(self.source, node)
        data, origins = method(node)
        origins.setdefault((), here)
        return data, origins

    def _Constant(self, node: ast.Constant) -> Value:
        value = node.value
        if isinstance(value, str):
            return self._string(value, node), {}
        if value is None or isinstance(value, (bool, int, float)):
            return value, {}
        refuse(self.source, node, f"the literal {value!r}", "Use a string, number or list.")

    def _string(self, text: str, node: ast.expr) -> str:
        if _ENV_VAR.search(text):
            refuse(
                self.source,
                node,
                "an environment variable (`{{$NAME:default}}`)",
                "Write the value, and change it per run with `--set KEY=VALUE`.",
            )
        if _QUOTED_BASE_REF.search(text):
            refuse(
                self.source,
                node,
                "`{{_base_.name}}` inside a string",
                "Write it without quotes (`x = {{_base_.name}}`) or as `_base_.name`; "
                "join strings with `+`.",
            )
        return _PREDEFINED.sub(lambda m: self._predefined(m.group(1)), text)

    def _predefined(self, name: str) -> str:
        filename = os.path.abspath(self.path)  # mmengine's {{ fileDirname }} is absolute
        stem, ext = os.path.splitext(os.path.basename(filename))
        values = {
            "fileDirname": os.path.dirname(filename),
            "fileBasename": os.path.basename(filename),
            "fileBasenameNoExtension": stem,
            "fileExtname": ext,
        }
        return values[name].replace("\\", "/")

    def _JoinedStr(self, node: ast.JoinedStr) -> Value:
        if not all(isinstance(v, ast.Constant) for v in node.values):
            refuse(
                self.source,
                node,
                "an f-string with `{...}` expressions",
                "Join strings with `+`, e.g. `data_root + 'train.json'`.",
            )
        return self._string("".join(str(v.value) for v in node.values), node), {}  # type: ignore[attr-defined]

    def _Name(self, node: ast.Name) -> Value:
        if node.id in self.names:
            data, origins = self.names[node.id]
            return copy.deepcopy(data), {p: o for p, o in origins.items() if p}
        if node.id == BASE_KEY:
            return self._base_value((), node)
        hint = ""
        if self.base is not None and node.id in self.base:
            hint = f" It is a variable of a base file: write `_base_.{node.id}`."
        else:
            hint = did_you_mean(node.id, list(self.names))
        raise ConfigError(
            f"{where(self.source, node)}: unknown name `{node.id}`; a name must be assigned "
            f"earlier in the same file.{hint}"
        )

    def _Attribute(self, node: ast.Attribute) -> Value:
        path = _base_path(node)
        if path is None:
            refuse(
                self.source,
                node,
                f"attribute access (`.{node.attr}`)",
                "Only a base file's variables are read this way (`_base_.name`); write the "
                "value, or use the name itself.",
            )
        return self._base_value(path, node)

    def _base_value(self, path: ConfigPath, node: ast.expr) -> Value:
        if self.base is None:
            raise ConfigError(
                f"{where(self.source, node)}: `_base_` is read here, but this file has no "
                "`_base_ = [...]` list of base files. Add the base files, or write the value."
            )
        value: Any = self.base
        for i, key in enumerate(path):
            if not isinstance(value, dict) or key not in value:
                keys = [str(k) for k in value] if isinstance(value, dict) else []
                raise ConfigError(
                    f"{where(self.source, node)}: `_base_.{'.'.join(map(str, path))}` is "
                    f"not in the base files: they have no {format_path(path[: i + 1])}."
                    f"{did_you_mean(str(key), keys)}"
                )
            value = value[key]
        return copy.deepcopy(value), _reroot(self.base_origins, path)

    def _Set(self, node: ast.Set) -> Value:
        # `{{_base_.name}}` parses as a set holding a set: mmengine's textual base reference
        inner = node.elts[0] if len(node.elts) == 1 else None
        if isinstance(inner, ast.Set) and len(inner.elts) == 1:
            ref = inner.elts[0]
            path = _base_path(ref) if isinstance(ref, ast.Attribute) else None
            if path is not None:
                return self._base_value(path, ref)
            if isinstance(ref, ast.Constant) and str(ref.value).startswith("$"):
                self._string("{{" + str(ref.value) + "}}", ref)
        refuse(self.source, node)

    def _List(self, node: ast.List | ast.Tuple) -> Value:
        items: list[Any] = []
        origins: Origins = {}
        for elt in node.elts:
            if isinstance(elt, ast.Starred):
                data, sub = self.value(elt.value)
                if not isinstance(data, list):
                    raise ConfigError(
                        f"{where(self.source, elt)}: `*` unpacks a list, not {kind(data)}."
                    )
                for i, item in enumerate(data):
                    origins.update(rooted(_reroot(sub, (i,)), (len(items),), at(sub, (i,))))
                    items.append(item)
                continue
            data, sub = self.value(elt)
            origins.update(rooted(sub, (len(items),), sub[()]))
            items.append(data)
        return items, origins

    _Tuple = _List

    def _Dict(self, node: ast.Dict) -> Value:
        result: dict[Any, Any] = {}
        origins: Origins = {}
        for key_node, value_node in zip(node.keys, node.values, strict=True):
            data, sub = self.value(value_node)
            if key_node is None:  # `**other`
                self._unpack_into(result, origins, data, sub, value_node, allow_repeat=True)
                continue
            key, _ = self.value(key_node)
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise ConfigError(
                    f"{where(self.source, key_node)}: a config key must be a string or an "
                    f"integer, got {key!r}."
                )
            _put(result, origins, key, data, sub, Origin(self.source, key_node.lineno))
        return result, origins

    def _Call(self, node: ast.Call) -> Value:
        func = node.func
        if not (isinstance(func, ast.Name) and func.id == "dict" and "dict" not in self.names):
            name = ast.unparse(func)
            refuse(
                self.source,
                node,
                f"a call to `{name}(...)`",
                "Only dict(...) is read; write the value the call would return.",
            )
        if node.args:
            refuse(
                self.source,
                node.args[0],
                "a positional argument to dict()",
                "Write dict(key=value, ...), or dict(**other, key=value).",
            )
        result: dict[str, Any] = {}
        origins: Origins = {}
        for kw in node.keywords:
            data, sub = self.value(kw.value)
            if kw.arg is None:  # `**other`
                self._unpack_into(result, origins, data, sub, kw.value, allow_repeat=False)
                continue
            self._check_repeat(result, kw.arg, kw)
            _put(result, origins, kw.arg, data, sub, Origin(self.source, kw.lineno))
        return result, origins

    def _unpack_into(
        self,
        result: dict[Any, Any],
        origins: Origins,
        data: Any,
        sub: Origins,
        node: ast.expr,
        allow_repeat: bool,
    ) -> None:
        if not isinstance(data, dict):
            raise ConfigError(f"{where(self.source, node)}: `**` unpacks a dict, not {kind(data)}.")
        for key, value in data.items():
            if not allow_repeat:
                self._check_repeat(result, key, node)
            _put(result, origins, key, value, _reroot(sub, (key,)), at(sub, (key,)))

    def _check_repeat(self, result: dict[Any, Any], key: Any, node: ast.AST) -> None:
        if key in result:  # Python itself refuses this (SyntaxError or TypeError)
            raise ConfigError(
                f"{where(self.source, node)}: dict() gets the keyword `{key}` twice. "
                "Keep one of them."
            )

    def _BinOp(self, node: ast.BinOp) -> Value:
        left, left_origins = self.value(node.left)
        right, right_origins = self.value(node.right)
        if isinstance(node.op, ast.Add):
            if isinstance(left, str) and isinstance(right, str):
                return left + right, {}
            if isinstance(left, list) and isinstance(right, list):
                origins = {p: o for p, o in left_origins.items() if p}
                for i in range(len(right)):
                    origins.update(
                        rooted(
                            _reroot(right_origins, (i,)), (len(left) + i,), at(right_origins, (i,))
                        )
                    )
                return left + right, origins
        if _is_number(left) and _is_number(right):
            return self._arithmetic(node, left, right), {}
        refuse(
            self.source,
            node,
            f"`{_OPS.get(type(node.op), '?')}` on {kind(left)} and {kind(right)}",
            "`+` joins two strings or two lists; other operators work on numbers only.",
        )

    def _arithmetic(self, node: ast.BinOp, left: Any, right: Any) -> Any:
        op = node.op
        try:
            if isinstance(op, ast.Add):
                return left + right
            if isinstance(op, ast.Sub):
                return left - right
            if isinstance(op, ast.Mult):
                return left * right
            if isinstance(op, ast.Div):
                return left / right
            if isinstance(op, ast.FloorDiv):
                return left // right
            if isinstance(op, ast.Mod):
                return left % right
            if isinstance(op, ast.Pow) and abs(right) <= _MAX_POWER:
                return left**right
        except (ZeroDivisionError, OverflowError) as exc:
            raise ConfigError(f"{where(self.source, node)}: {exc}.") from None
        refuse(
            self.source,
            node,
            f"the operator `{_OPS.get(type(op), '?')}` here",
            "Write the resulting number.",
        )

    def _UnaryOp(self, node: ast.UnaryOp) -> Value:
        data, _ = self.value(node.operand)
        if isinstance(node.op, (ast.USub, ast.UAdd)) and _is_number(data):
            return (-data if isinstance(node.op, ast.USub) else +data), {}
        refuse(self.source, node, "this unary operator", "Write the resulting value.")


_OPS: dict[type[ast.operator], str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.Pow: "**",
    ast.MatMult: "@",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.LShift: "<<",
    ast.RShift: ">>",
}


def _put(
    result: dict[Any, Any], origins: Origins, key: Any, data: Any, sub: Origins, at: Origin | None
) -> None:
    """Set `result[key]`, replacing the origins of a value it had before."""
    if key in result:
        for p in [p for p in origins if p[:1] == (key,)]:
            del origins[p]
    result[key] = data
    origins.update(rooted(sub, (key,), at))


def _reroot(origins: Origins, prefix: ConfigPath) -> Origins:
    """The origins under `prefix`, with `prefix` cut off their paths."""
    n = len(prefix)
    return {p[n:]: o for p, o in subtree(origins, prefix).items()}


def rooted(origins: Origins, prefix: ConfigPath, root: Origin | None) -> Origins:
    """Relative origins moved under `prefix`; `root` becomes the origin of `prefix` itself."""
    moved = {(*prefix, *p): o for p, o in origins.items() if p}
    if root is not None:
        moved[prefix] = root
    return moved


def at(origins: Origins, path: ConfigPath) -> Origin | None:
    for i in range(len(path), -1, -1):
        if path[:i] in origins:
            return origins[path[:i]]
    return None


def _base_path(node: ast.expr) -> ConfigPath | None:
    """`_base_.a.b` -> ("a", "b"); None for attribute access on anything but `_base_`."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name) and node.id == BASE_KEY:
        return tuple(reversed(parts))
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def kind(value: Any) -> str:
    """`a dict`, `an int`, ...: a value's type in words, for messages."""
    names = {
        dict: "a dict", list: "a list", str: "a string", bool: "a bool", int: "an int",
        float: "a float", type(None): "None",
    }  # fmt: skip
    return names.get(type(value), f"a {type(value).__name__}")

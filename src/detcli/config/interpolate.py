"""`${a.b.c}` references inside string values, resolved once all files and `--set`s are merged.

Resolving last means `--set data_root=/my/data` moves every path written as
`${data_root}train.json`, which is what users expect from a shared base file.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from detcli.config.origins import ConfigPath, Origins, format_path, nearest
from detcli.errors import ConfigError
from detcli.suggest import did_you_mean

_REF = re.compile(r"\$\{([^${}]*)\}")

# For each value that used references: the config paths it referred to (for --show-origin).
References = dict[ConfigPath, list[ConfigPath]]


def resolve_references(data: dict[str, Any], origins: Origins) -> References:
    """Replace every `${path}` in string values in place; return which values used which paths."""
    resolver = _Resolver(data, origins)
    resolver.resolve(())
    return resolver.references


class _Resolver:
    def __init__(self, data: dict[str, Any], origins: Origins):
        self.data = data
        self.origins = origins
        self.references: References = {}
        self.stack: list[ConfigPath] = []

    def resolve(self, path: ConfigPath) -> Any:
        if path in self.stack:
            chain = " -> ".join(
                f"${{{format_path(p)}}}" for p in [*self.stack[self.stack.index(path) :], path]
            )
            raise ConfigError(
                f"{nearest(self.origins, self.stack[-1])}: config references form a cycle: {chain}."
            )
        self.stack.append(path)
        try:
            value = self._get(path)
            if isinstance(value, str) and "${" in value:
                self._set(path, self._substitute(value, path))
            elif isinstance(value, dict):
                for key in list(value):
                    self.resolve((*path, key))
            elif isinstance(value, list):
                for i in range(len(value)):
                    self.resolve((*path, i))
        finally:
            self.stack.pop()
        return self._get(path)

    def _substitute(self, text: str, path: ConfigPath) -> Any:
        refs = [(m, self._parse_ref(m.group(1), path)) for m in _REF.finditer(text)]
        self.references[path] = [ref for _, ref in refs]
        if len(refs) == 1 and refs[0][0].group(0) == text:  # the whole string: keep the type
            ref = refs[0][1]
            value = copy.deepcopy(self.resolve(ref))
            n = len(ref)
            for sub, origin in [
                (p, o) for p, o in self.origins.items() if p[:n] == ref and p != ref
            ]:
                self.origins[path + sub[n:]] = origin
            return value
        return _REF.sub(lambda m: _as_text(self.resolve(self._parse_ref(m.group(1), path))), text)

    def _parse_ref(self, text: str, used_at: ConfigPath) -> ConfigPath:
        parts = text.strip().split(".")
        if not text.strip() or any(not p for p in parts):
            raise ConfigError(
                f"{nearest(self.origins, used_at)}: {format_path(used_at)} has an empty or "
                "malformed "
                f"reference ${{{text}}}; write ${{key.path}}."
            )
        ref: list[Any] = []
        node: Any = self.data
        for part in parts:
            key: Any = int(part) if isinstance(node, list) and part.isdigit() else part
            if (isinstance(node, dict) and key in node) or (
                isinstance(node, list) and isinstance(key, int) and key < len(node)
            ):
                ref.append(key)
                node = node[key]
                continue
            keys = [str(k) for k in node] if isinstance(node, dict) else []
            hint = did_you_mean(part, keys)
            raise ConfigError(
                f"{nearest(self.origins, used_at)}: {format_path(used_at)} refers to ${{{text}}}, "
                f"but the config has no {format_path((*ref, key))}.{hint}"
            )
        return tuple(ref)

    def _get(self, path: ConfigPath) -> Any:
        node: Any = self.data
        for part in path:
            node = node[part]
        return node

    def _set(self, path: ConfigPath, value: Any) -> None:
        self._get(path[:-1])[path[-1]] = value


def _as_text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)

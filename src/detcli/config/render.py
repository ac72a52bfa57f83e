"""Printing a resolved config: YAML, JSON, and YAML with the origin of every value."""

from __future__ import annotations

import json
from typing import Any

from detcli.config.config_dict import dump_yaml
from detcli.config.loader import ResolvedConfig
from detcli.config.origins import ConfigPath, format_path

_INDENT = "  "


def render_config(resolved: ResolvedConfig, fmt: str = "yaml", show_origin: bool = False) -> str:
    """The config as text in `fmt` ("yaml" or "json"), optionally marked with origins."""
    data = resolved.cfg.to_dict()
    if fmt == "json":
        if show_origin:  # JSON has no comments: a flat map of leaf path -> value and origin
            leaves = {
                format_path(path): {"value": value, "origin": _origin_text(resolved, path)}
                for path, value in _leaves(data, ())
            }
            return json.dumps(leaves, indent=2, ensure_ascii=False)
        return json.dumps(data, indent=2, ensure_ascii=False)
    if show_origin:
        return "\n".join(_yaml_lines(data, (), 0, resolved)) + "\n"
    return dump_yaml(data)


def _origin_text(resolved: ResolvedConfig, path: ConfigPath) -> str:
    origin = resolved.origin(path)
    text = str(origin) if origin else "?"
    refs = resolved.references.get(path)
    if refs:
        via = ", ".join(f"${{{format_path(r)}}} from {resolved.origin(r)}" for r in refs)
        text += f" (via {via})"
    return text


def _leaves(value: Any, path: ConfigPath) -> list[tuple[ConfigPath, Any]]:
    if isinstance(value, dict) and value:
        return [leaf for k, v in value.items() for leaf in _leaves(v, (*path, k))]
    if isinstance(value, list) and value and not _is_flat(value):
        return [leaf for i, v in enumerate(value) for leaf in _leaves(v, (*path, i))]
    return [(path, value)]


def _is_flat(value: list[Any]) -> bool:
    """A list of scalars prints on one line, as one leaf."""
    return all(not isinstance(v, (dict, list)) or not v for v in value)


def _scalar(value: Any) -> str:
    """One value as inline YAML (flow style for short lists and empty containers)."""
    if isinstance(value, str) and "\n" in value:  # a JSON string is a one-line YAML scalar
        return json.dumps(value, ensure_ascii=False)
    return dump_yaml(value).strip().removesuffix("\n...").removesuffix("...").strip()


def _yaml_lines(
    value: dict[Any, Any], path: ConfigPath, depth: int, resolved: ResolvedConfig
) -> list[str]:
    lines = []
    pad = _INDENT * depth
    for key, child in value.items():
        child_path = (*path, key)
        head = f"{pad}{_scalar(key)}:"
        lines += _child_lines(head, child, child_path, depth, resolved)
    return lines


def _child_lines(
    head: str, child: Any, path: ConfigPath, depth: int, resolved: ResolvedConfig
) -> list[str]:
    if isinstance(child, dict) and child:
        return [head, *_yaml_lines(child, path, depth + 1, resolved)]
    if isinstance(child, list) and child and not _is_flat(child):
        lines = [head]
        for i, item in enumerate(child):
            lines += _item_lines(item, (*path, i), depth + 1, resolved)
        return lines
    return [f"{head} {_scalar(child)}  # {_origin_text(resolved, path)}"]


def _item_lines(item: Any, path: ConfigPath, depth: int, resolved: ResolvedConfig) -> list[str]:
    """A list item in block style: `- key: value` with the rest of the mapping under it."""
    pad = _INDENT * depth
    if isinstance(item, dict) and item:
        body = _yaml_lines(item, path, depth + 1, resolved)
        first = body[0].lstrip()
        return [f"{pad}- {first}", *body[1:]]
    if isinstance(item, list) and item and not _is_flat(item):
        lines = [f"{pad}-"]
        for i, sub in enumerate(item):
            lines += _item_lines(sub, (*path, i), depth + 1, resolved)
        return lines
    return [f"{pad}- {_scalar(item)}  # {_origin_text(resolved, path)}"]

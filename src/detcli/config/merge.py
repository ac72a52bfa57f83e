"""Merging config layers: mappings merge recursively, everything else replaces.

Origins travel with the values, so after any number of merges every leaf still knows which
file line (or `--set`) gave its final value.
"""

from __future__ import annotations

import copy
from typing import Any

from detcli.config.origins import ConfigPath, Origins, drop_subtree, format_path, nearest, subtree
from detcli.errors import ConfigError

DELETE_KEY = "_delete_"


def merge_into(
    dst: dict[Any, Any],
    src: dict[Any, Any],
    dst_origins: Origins,
    src_origins: Origins,
    prefix: ConfigPath = (),
) -> None:
    """Merge `src` (at config path `prefix`) into `dst` in place, origins included."""
    for key, value in src.items():
        if key == DELETE_KEY:
            continue
        path = (*prefix, key)
        if isinstance(value, dict):
            delete = _delete_flag(value, path, src_origins)
            base = dst.get(key)
            if delete and key in dst and not isinstance(base, dict):
                raise ConfigError(
                    f"{nearest(src_origins, (*path, DELETE_KEY))}: `_delete_: true` at "
                    f"{format_path(path)} can only replace an inherited mapping, but the inherited "
                    f"value is {type(base).__name__} {base!r}. Remove `_delete_` (a non-mapping "
                    "value is replaced anyway)."
                )
            if not delete and isinstance(base, dict):
                merge_into(base, value, dst_origins, src_origins, path)
                continue
        replace(dst, key, value, dst_origins, src_origins, path)


def replace(
    container: dict[Any, Any] | list[Any],
    key: Any,
    value: Any,
    dst_origins: Origins,
    src_origins: Origins,
    path: ConfigPath,
) -> None:
    """Put `value` at `container[key]` (config path `path`) with its origins from `src_origins`."""
    container[key] = strip_delete(copy.deepcopy(value), path, src_origins)
    drop_subtree(dst_origins, path)
    dst_origins.update(subtree(src_origins, path))


def strip_delete(value: Any, path: ConfigPath, origins: Origins) -> Any:
    """Remove `_delete_` markers that have nothing inherited to delete (checking their values)."""
    if isinstance(value, dict):
        if DELETE_KEY in value:
            _delete_flag(value, path, origins)
            del value[DELETE_KEY]
            drop_subtree(origins, (*path, DELETE_KEY))
        for k, v in value.items():
            value[k] = strip_delete(v, (*path, k), origins)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            value[i] = strip_delete(v, (*path, i), origins)
    return value


def _delete_flag(mapping: dict[Any, Any], path: ConfigPath, origins: Origins) -> bool:
    flag = mapping.get(DELETE_KEY, False)
    if not isinstance(flag, bool):
        raise ConfigError(
            f"{nearest(origins, (*path, DELETE_KEY))}: `_delete_` at {format_path(path)} must be "
            f"true or false, got {flag!r}."
        )
    return flag

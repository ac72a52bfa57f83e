"""`--set a.b.c=VALUE` overrides, applied after every config file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from detcli.config.merge import DELETE_KEY, merge_into, replace
from detcli.config.origins import ConfigPath, Origin, Origins, format_path
from detcli.config.yaml_source import parse_yaml
from detcli.errors import ConfigError


@dataclass(frozen=True)
class Override:
    """One parsed `--set`: where it goes and the value YAML gave it."""

    path: ConfigPath
    value: Any
    text: str


def parse_override(text: str) -> Override:
    """Parse `a.b.2.c=VALUE`; VALUE is YAML (`0.01`, `[8, 11]`, `null`, `"quoted"`)."""
    if "=" not in text:
        raise ConfigError(
            f"--set {text!r} has no '='. Write it as --set KEY.PATH=VALUE, e.g. "
            "--set optimizer.lr=0.01"
        )
    raw_path, raw_value = text.split("=", 1)
    raw_path = raw_path.strip()
    if not raw_path:
        raise ConfigError(f"--set {text!r} has an empty key path before '='.")
    parts = raw_path.split(".")
    if any(not p.strip() for p in parts):
        raise ConfigError(f"--set {text!r}: the key path {raw_path!r} has an empty part.")
    path = tuple(int(p) if p.isdigit() else p.strip() for p in parts)
    # `a=` means null (parse_yaml would read empty text as an empty file: an empty mapping).
    value = parse_yaml(raw_value, f"--set {text}")[0] if raw_value.strip() else None
    return Override(path, value, text)


def apply_override(data: dict[str, Any], origins: Origins, override: Override) -> None:
    """Apply one override to the merged config in place; missing mapping keys are created.

    A mapping value merges like one more config file on top (`_delete_: true` replaces).
    """
    origin = Origin("--set", text=override.text)
    container: Any = data
    path: list[str | int] = []
    for depth, part in enumerate(override.path):
        key = _key_in(container, part, override, tuple(path))
        path.append(key)
        if depth == len(override.path) - 1:
            break
        child: Any = container.get(key) if isinstance(container, dict) else container[key]
        if child is None:  # a missing or null intermediate becomes a new mapping
            child = container[key] = {}
            origins[tuple(path)] = origin
        elif not isinstance(child, (dict, list)):
            raise ConfigError(
                f"--set {override.text}: {format_path(tuple(path))} is {type(child).__name__} "
                f"{child!r}, not a mapping or list, so it has no key {override.path[depth + 1]!r}."
            )
        container = child

    full, last, value = tuple(path), path[-1], override.value
    src_origins = {full + p: origin for p in _all_paths(value)}
    if isinstance(value, dict) and isinstance(container, dict):
        merge_into(container, {last: value}, origins, src_origins, full[:-1])
    elif (
        isinstance(value, dict)
        and isinstance(container[last], dict)
        and not value.get(DELETE_KEY, False)
    ):
        merge_into(container[last], value, origins, src_origins, full)
    else:
        replace(container, last, value, origins, src_origins, full)


def _key_in(container: Any, part: str | int, override: Override, parent: ConfigPath) -> str | int:
    """The key `part` stands for in `container`; lists take only in-range integer indices."""
    if isinstance(container, list):
        if not isinstance(part, int):
            raise ConfigError(
                f"--set {override.text}: {format_path(parent)} is a list; index it with a "
                f"number (0 to {len(container) - 1}), not {part!r}."
            )
        if part >= len(container):
            raise ConfigError(
                f"--set {override.text}: index {part} is past the end of {format_path(parent)}, "
                f"a list of {len(container)} item(s) (valid indices 0 to {len(container) - 1})."
            )
        return part
    # Digits name a string key in a mapping unless the mapping really has that integer key.
    return part if not isinstance(part, int) or part in container else str(part)


def _all_paths(value: Any, prefix: ConfigPath = ()) -> list[ConfigPath]:
    paths = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            paths += _all_paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            paths += _all_paths(v, (*prefix, i))
    return paths

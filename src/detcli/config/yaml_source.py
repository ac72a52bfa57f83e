"""Reading one YAML (or JSON) file into plain data, with the line of every value.

Only PyYAML's safe constructors run: a config never executes code.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from detcli.config.origins import ConfigPath, Origin, Origins
from detcli.errors import ConfigError


class ConfigLoader(yaml.SafeLoader):
    """SafeLoader that also reads `1e-4` as a float.

    YAML 1.1 (PyYAML) wants a dot in a float, so `weight_decay: 1e-4` would silently be the
    string "1e-4": the most common config bug in the field. YAML 1.2 and JSON read it as a float.
    """


ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


_PLAIN_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")
_SCALAR_TAGS = tuple(
    f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "timestamp")
)
# YAML aliases can make a few hundred bytes expand to gigabytes ("billion laughs"), and a
# recursive alias to infinite depth: a config is never that big or that deep.
MAX_VALUES = 100_000
MAX_DEPTH = 64


class _Budget:
    """How many more values the file may expand to."""

    def __init__(self, limit: int = MAX_VALUES):
        self.left = limit


def read_yaml_file(path: Path) -> tuple[Any, Origins]:
    """Parse `path`; return its data and the origin (file:line) of every value in it."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"Config file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"Config path is a directory, not a file: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Cannot read config file {path}: {exc}") from None
    return parse_yaml(text, str(path))


def parse_yaml(text: str, source: str) -> tuple[Any, Origins]:
    """Parse YAML text; `source` names it in origins and error messages."""
    loader = ConfigLoader(text)
    origins: Origins = {}
    try:
        node = loader.get_single_node()
        if node is None:  # an empty file is an empty mapping
            return {}, origins
        data = _construct(loader, node, (), origins, source, _Budget())
    except yaml.MarkedYAMLError as exc:
        raise ConfigError(_yaml_error_message(exc, source)) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {exc}") from None
    finally:
        loader.dispose()
    return data, origins


def _construct(
    loader: ConfigLoader,
    node: yaml.Node,
    path: ConfigPath,
    origins: Origins,
    source: str,
    budget: _Budget,
) -> Any:
    line = node.start_mark.line + 1
    budget.left -= 1
    if budget.left < 0 or len(path) > MAX_DEPTH:
        what = f"more than {MAX_VALUES:,} values" if budget.left < 0 else "deeper than 64 levels"
        raise ConfigError(
            f"{source}:{line}: the config expands to {what} (YAML aliases that repeat or contain "
            "themselves?); a config is never that large. Write the values out instead."
        )
    origins[path] = Origin(source, line)
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and node.tag not in _PLAIN_TAGS:
        raise ConfigError(
            f"{source}:{node.start_mark.line + 1}: unsupported YAML tag {node.tag!r}; "
            "a config holds "
            "plain mappings, lists and scalars only (nothing is ever executed)."
        )
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolves `<<: *anchor` merge keys
        result: dict[Any, Any] = {}
        key_lines: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise ConfigError(
                    f"{source}:{line}: a config key must be a string or an integer, got {key!r}; "
                    "quote it to make it a string."
                )
            if key in key_lines:
                raise ConfigError(
                    f"{source}:{line}: duplicate key {key!r} "
                    f"(first given on line {key_lines[key]}); "
                    "YAML would silently keep only the last one. Remove one of them."
                )
            key_lines[key] = line
            result[key] = _construct(loader, value_node, (*path, key), origins, source, budget)
            origins[(*path, key)] = Origin(source, line)  # the key's line is what users look for
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _construct(loader, item, (*path, i), origins, source, budget)
            for i, item in enumerate(node.value)
        ]
    if node.tag not in _SCALAR_TAGS:
        raise ConfigError(
            f"{source}:{line}: unsupported YAML tag {node.tag!r}; a config holds plain strings, "
            "numbers, booleans and nulls (quote the value to make it a string)."
        )
    if node.tag == "tag:yaml.org,2002:timestamp":
        return str(node.value)  # `2024-05-01` stays text (YAML 1.2, JSON): no date objects
    return loader.construct_object(node, deep=True)


def _yaml_error_message(exc: yaml.MarkedYAMLError, source: str) -> str:
    mark = exc.problem_mark or exc.context_mark
    where = source
    if mark is not None:
        where = f"{source}:{mark.line + 1}:{mark.column + 1}"
    problem = " ".join(str(p) for p in (exc.context, exc.problem) if p)
    return f"{where}: invalid YAML: {problem or exc}. Fix the file at that line and column."

"""`detcli convert-config`: a `.py` config's own keys as YAML, keeping its `_base_` structure.

Each converted file holds what its `.py` file says itself, with `_base_` naming the bases'
`.yaml` twins; references to a base's variables (`_base_.x`, `{{_base_.x}}`) are inlined as the
values they had, which is exactly what mmengine does with them. So loading the YAML chain gives
the same merged config as loading the `.py` chain.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from detcli.config.loader import BASE_KEY, read_layer
from detcli.config.yaml_source import parse_yaml
from detcli.errors import ConfigError

HEADER = "# Converted from {name} by `detcli convert-config`."
_HEADER_START = "# Converted from "


@dataclass
class Conversion:
    """One converted file: its `.py` source, where the YAML goes (None: stdout) and the text."""

    source: Path
    target: Path | None
    text: str
    unconverted_bases: list[Path]  # `.py` bases named as `.yaml` that this run does not write


def convert_py_config(
    path: str | Path, out: str | Path | None = None, recursive: bool = False
) -> list[Conversion]:
    """The YAML of `path` (to `out`, or stdout) and, with `recursive`, of its `.py` bases."""
    path = Path(path)
    if path.suffix != ".py":
        raise ConfigError(
            f"{path}: convert-config converts a .py config; this file is already "
            f"{path.suffix or 'not a .py file'}. Use `detcli print-config` to see it merged."
        )
    root = _convert_one(path, Path(out) if out is not None else None, recursive)
    results = [root]
    if recursive:
        seen = {path.resolve()}
        todo = list(_py_bases(path))
        while todo:
            base = todo.pop(0)
            if base.resolve() in seen:
                continue
            seen.add(base.resolve())
            results.append(_convert_one(base, base.with_suffix(".yaml"), True))
            todo += _py_bases(base)
    return results


def write_conversions(conversions: list[Conversion], overwrite_target: Path | None = None) -> None:
    """Write each conversion that has a target; a file not made by convert-config is kept.

    `overwrite_target` (the `-o` the user named) may replace any file.
    """
    for conv in conversions:
        target = conv.target
        if target is None or target == overwrite_target or not target.exists():
            continue
        if not target.read_text(encoding="utf-8").startswith(_HEADER_START):
            raise ConfigError(
                f"{target} exists and was not written by convert-config; it is kept. Move it "
                f"away, or convert {conv.source} on its own with -o to another file."
            )
    for conv in conversions:
        if conv.target is not None:
            conv.target.parent.mkdir(parents=True, exist_ok=True)
            conv.target.write_text(conv.text, encoding="utf-8")


def _convert_one(path: Path, target: Path | None, recursive: bool) -> Conversion:
    own, _, bases = read_layer(path)
    written_from = (target or path).parent
    unconverted = []
    if BASE_KEY in own:
        names = []
        for base in bases:
            if base.suffix == ".py":
                if not recursive:
                    unconverted.append(base)
                base = base.with_suffix(".yaml")
            names.append(_relative(base, written_from))
        own[BASE_KEY] = names[0] if isinstance(own[BASE_KEY], str) else names
    text = HEADER.format(name=path.name) + "\n" + dump_config_yaml(own, str(path))
    return Conversion(path, target, text, unconverted)


def dump_config_yaml(data: dict[str, Any], source: str) -> str:
    """YAML that detcli's reader reads back as exactly `data` (checked, not hoped)."""
    text = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    back, _ = parse_yaml(text, f"{source} (converted)")
    if back != data:  # a value YAML cannot hold as it is: never write a config that differs
        raise ConfigError(
            f"{source}: its YAML form would not read back as the same values; "
            "please report this with the file."
        )
    return text


def _relative(path: Path, start: Path) -> str:
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(start))
    return rel.replace(os.sep, "/")


def _py_bases(path: Path) -> list[Path]:
    _, _, bases = read_layer(path)
    return [b for b in bases if b.suffix == ".py"]


class _Dumper(yaml.SafeDumper):
    """Block style with short scalar lists inline; quotes strings detcli would read as floats."""


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    flow = all(not isinstance(x, (dict, list)) for x in data) and len(data) <= 16
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _represent_list)
# detcli's reader takes `1e-4` as a float (yaml_source.ConfigLoader): such strings need quotes
_Dumper.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)

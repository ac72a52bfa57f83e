"""`ConfigDict`: the merged config as a plain dict with attribute access."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from detcli.suggest import did_you_mean


class ConfigDict(dict[str, Any]):
    """A dict whose nested mappings are ConfigDicts, readable as `cfg.model.backbone.depth`.

    It stays a real `dict` (key order kept, `**cfg` works, json/yaml dump it) so code that
    builds components never needs to know about it.
    """

    def __init__(self, data: Mapping[str, Any] | Iterable[tuple[str, Any]] = (), **kwargs: Any):
        super().__init__()
        for key, value in dict(data, **kwargs).items():
            self[key] = value

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, _wrap(value))

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            hint = did_you_mean(name, [str(k) for k in self])
            raise AttributeError(f"config has no key {name!r}.{hint}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __deepcopy__(self, memo: dict[int, Any]) -> ConfigDict:
        import copy

        return ConfigDict({k: copy.deepcopy(v, memo) for k, v in self.items()})

    def to_dict(self) -> dict[str, Any]:
        """A deep copy made of builtin dicts and lists only."""
        return _unwrap(self)  # type: ignore[no-any-return]

    def to_yaml(self) -> str:
        """The config as block-style YAML, keys in their config order."""
        return dump_yaml(self.to_dict())

    def to_json(self, indent: int = 2) -> str:
        """The config as JSON, keys in their config order."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def dump(self, path: str | Path) -> Path:
        """Write the config to `path` as JSON (`.json`) or YAML (anything else); return the path."""
        path = Path(path)
        text = self.to_json() + "\n" if path.suffix == ".json" else self.to_yaml()
        path.write_text(text, encoding="utf-8")
        return path


def dump_yaml(data: Any) -> str:
    """YAML text for plain data; short scalar lists stay on one line, as people write them."""
    return yaml.dump(data, Dumper=_FlowListDumper, sort_keys=False, allow_unicode=True, width=100)


class _FlowListDumper(yaml.SafeDumper):
    pass


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    flow = all(not isinstance(x, (dict, list)) for x in data) and len(data) <= 16
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_FlowListDumper.add_representer(list, _represent_list)


def _wrap(value: Any) -> Any:
    if isinstance(value, ConfigDict):
        return value
    if isinstance(value, Mapping):
        return ConfigDict(value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


def _unwrap(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_unwrap(v) for v in value]
    return value

"""Loading a config: `_base_` files, merging, `--set` overrides and `${...}` references."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from detcli.config.config_dict import ConfigDict
from detcli.config.interpolate import References, resolve_references
from detcli.config.merge import DELETE_KEY, merge_into, strip_delete
from detcli.config.origins import ConfigPath, Origin, Origins, nearest
from detcli.config.overrides import apply_override, parse_override
from detcli.config.yaml_source import read_yaml_file
from detcli.errors import ConfigError

BASE_KEY = "_base_"


@dataclass
class ResolvedConfig:
    """A merged config together with where each of its values came from."""

    cfg: ConfigDict
    filename: Path
    origins: Origins = field(default_factory=dict)
    references: References = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)  # every file read, in reading order

    def origin(self, path: ConfigPath) -> Origin | None:
        """The origin of the value at `path` (or of its nearest ancestor that has one)."""
        return nearest(self.origins, path)


def resolve_config(path: str | Path, overrides: Sequence[str] = ()) -> ResolvedConfig:
    """Load `path` with its bases, apply `--set` overrides, resolve references."""
    parsed = [parse_override(text) for text in overrides]  # bad --set fails before any file I/O
    filename = Path(path)
    files: list[Path] = []
    data, origins = _load_with_bases(filename, chain=(), files=files)
    for override in parsed:
        apply_override(data, origins, override)
    references = resolve_references(data, origins)
    return ResolvedConfig(ConfigDict(data), filename, origins, references, files)


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> ConfigDict:
    """The merged config of `path` with `overrides` (`["optimizer.lr=0.01", ...]`) applied."""
    return resolve_config(path, overrides).cfg


def _load_with_bases(
    path: Path, chain: tuple[Path, ...], files: list[Path], included_from: Origin | None = None
) -> tuple[dict[str, Any], Origins]:
    real = path.resolve()
    if real in chain:
        cycle = " -> ".join(str(p) for p in (*chain, real))
        raise ConfigError(
            f"_base_ files include each other in a cycle: {cycle}. Remove one of the links."
        )
    if not path.is_file():
        via = f" (named in _base_ at {included_from})" if included_from else ""
        what = "is a directory, not a file" if path.is_dir() else "does not exist"
        raise ConfigError(f"Config file {path}{via} {what}.")
    files.append(path)
    own, own_origins = read_yaml_file(path)
    if not isinstance(own, dict):
        raise ConfigError(
            f"{path}: the top level of a config must be a mapping (key: value lines), "
            f"but it is a {type(own).__name__}."
        )
    if DELETE_KEY in own:
        raise ConfigError(
            f"{own_origins[(DELETE_KEY,)]}: `_delete_` cannot be used at the top level."
        )

    merged: dict[str, Any] = {}
    merged_origins: Origins = {}
    for base, base_origin in _base_paths(path, own, own_origins):
        base_data, base_origins = _load_with_bases(base, (*chain, real), files, base_origin)
        merge_into(merged, base_data, merged_origins, base_origins)
    own.pop(BASE_KEY, None)
    if not merged:  # no bases: nothing to merge into, only stray `_delete_` markers to check
        return strip_delete(own, (), own_origins), own_origins
    merge_into(merged, own, merged_origins, own_origins)
    return merged, merged_origins


def _base_paths(path: Path, data: dict[str, Any], origins: Origins) -> list[tuple[Path, Origin]]:
    bases = data.get(BASE_KEY, [])
    if isinstance(bases, str):
        bases = [bases]
    where = origins.get((BASE_KEY,), Origin(str(path)))
    if not isinstance(bases, list) or not all(isinstance(b, str) and b for b in bases):
        raise ConfigError(
            f"{where}: `_base_` must be a file path or a list of file paths, got {bases!r}."
        )
    result = []
    for i, base in enumerate(bases):
        base_path = Path(base).expanduser()
        if not base_path.is_absolute():
            base_path = path.parent / base_path
        result.append((base_path, origins.get((BASE_KEY, i), where)))
    return result

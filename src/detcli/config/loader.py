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
from detcli.config.py_source import PySource, check_py_merge
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
    own, own_origins, merged, merged_origins, _ = _read_layer(path, (*chain, real), files)
    own.pop(BASE_KEY, None)
    if not merged:  # no bases: nothing to merge into, only stray `_delete_` markers to check
        return strip_delete(own, (), own_origins), own_origins
    merge_into(merged, own, merged_origins, own_origins)
    return merged, merged_origins


def read_layer(path: str | Path) -> tuple[dict[str, Any], Origins, list[Path]]:
    """One file's own keys (`_base_` as written) and its base files (which are read too).

    For a `.py` file, references to its bases (`_base_.name`) come out as their values.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Config file {path} does not exist.")
    own, own_origins, _, _, bases = _read_layer(path, (path.resolve(),), [])
    return own, own_origins, bases


def _read_layer(
    path: Path, chain: tuple[Path, ...], files: list[Path]
) -> tuple[dict[str, Any], Origins, dict[str, Any], Origins, list[Path]]:
    """The file's own data and origins, its merged bases with theirs, and its base paths."""
    # a .py file names its bases first; its values need the merged bases (`_base_.name`)
    py = PySource.read(path) if path.suffix == ".py" else None
    own, own_origins = py.base_entry() if py else read_yaml_file(path)
    if not isinstance(own, dict):
        raise ConfigError(
            f"{path}: the top level of a config must be a mapping (key: value lines), "
            f"but it is a {type(own).__name__}."
        )
    merged: dict[str, Any] = {}
    merged_origins: Origins = {}
    bases = _base_paths(path, own, own_origins)
    for base, base_origin in bases:
        base_data, base_origins = _load_with_bases(base, chain, files, base_origin)
        if py:
            _refuse_keys_in_two_bases(merged, base_data, merged_origins, base_origins)
        merge_into(merged, base_data, merged_origins, base_origins)
    if py:
        own, own_origins = py.evaluate(merged if BASE_KEY in own else None, merged_origins)
        check_py_merge(own, merged, own_origins)
    if DELETE_KEY in own:
        raise ConfigError(
            f"{own_origins[(DELETE_KEY,)]}: `_delete_` cannot be used at the top level."
        )
    return own, own_origins, merged, merged_origins, [base for base, _ in bases]


def _refuse_keys_in_two_bases(
    merged: dict[str, Any], base: dict[str, Any], merged_origins: Origins, base_origins: Origins
) -> None:
    """mmengine refuses a key that two bases of a .py config both set; so does detcli."""
    both = [key for key in base if key in merged]
    if both:
        key = both[0]
        raise ConfigError(
            f"`{key}` is set by two base files of a .py config ({merged_origins.get((key,))} and "
            f"{base_origins.get((key,))}); MMDetection (mmengine) refuses this, and so does "
            f"detcli. Keys in both: {', '.join(map(str, both))}. Keep each key in one base."
        )


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

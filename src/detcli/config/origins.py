"""Where each config value came from: a file and line, or a `--set` override."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# A position in the config tree: mapping keys and list indices from the root.
ConfigPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Origin:
    """The file and line (or the `--set` text) that gave a value."""

    source: str  # a file path, or "--set"
    line: int | None = None
    text: str | None = None  # the override text, for --set

    def __str__(self) -> str:
        if self.text is not None:
            return f"--set {self.text}"
        where = _display_path(self.source)
        return f"{where}:{self.line}" if self.line is not None else where


Origins = dict[ConfigPath, Origin]


def format_path(path: ConfigPath) -> str:
    """`('data', 'train', 'pipeline', 2)` -> `data.train.pipeline.2` (`<root>` for the root)."""
    return ".".join(str(p) for p in path) if path else "<root>"


def subtree(origins: Origins, prefix: ConfigPath) -> Origins:
    """The origins at `prefix` and below it."""
    n = len(prefix)
    return {p: o for p, o in origins.items() if p[:n] == prefix}


def drop_subtree(origins: Origins, prefix: ConfigPath) -> None:
    """Forget the origins at `prefix` and below (its value is being replaced)."""
    n = len(prefix)
    for p in [p for p in origins if p[:n] == prefix]:
        del origins[p]


def nearest(origins: Origins, path: ConfigPath) -> Origin | None:
    """The origin of `path`, or of its closest ancestor that has one."""
    for i in range(len(path), -1, -1):
        origin = origins.get(path[:i])
        if origin is not None:
            return origin
    return None


def _display_path(source: str) -> str:
    """Paths under the working directory print relative to it, as the user typed them."""
    try:
        rel = os.path.relpath(source)
    except ValueError:  # another drive on Windows
        return source
    return rel if not rel.startswith("..") else str(Path(source))

"""Reading run settings out of a merged config: typed keys, near names, both spellings.

Each settings module declares its sections as `Section`s (the keys a mapping takes, with the
type each must have, and which are accepted but have no effect in detcli). The same
declarations drive reading (`SettingsReader.section`) and `detcli check`, so what is checked
cannot drift from what is read.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from detcli.config.origins import ConfigPath, Origins, format_path, nearest
from detcli.config.typecheck import describe, matches
from detcli.suggest import did_you_mean

MISSING: Any = object()


@dataclass(frozen=True)
class Key:
    """One key of a settings section: its type, and why it has no effect (None: it has one)."""

    hint: Any
    no_effect: str | None = None


@dataclass(frozen=True)
class Section:
    """A plain settings mapping (not a registry component) and the keys it takes."""

    keys: Mapping[str, Key]
    # The other spelling's name for a key of this section, for "did you mean" across spellings.
    other_spelling: Mapping[str, str] = field(default_factory=dict)
    open: bool = False  # extra keys are passed on (e.g. a hook's own arguments)


@dataclass(frozen=True)
class Finding:
    """A problem (or, with `note`, an accepted key with no effect) at a config path."""

    path: ConfigPath
    message: str
    note: bool = False


class SettingsReader:
    """Reads values from a merged config, collecting every problem instead of stopping at one."""

    def __init__(self, cfg: Mapping[str, Any], origins: Origins | None = None):
        self.cfg = cfg
        self.origins = origins or {}
        self.findings: list[Finding] = []

    # -- reporting -------------------------------------------------------------------------

    def problem(self, path: ConfigPath, message: str) -> None:
        """Record a problem at `path` (once: several splits may read one shared key)."""
        finding = Finding(path, message)
        if finding not in self.findings:
            self.findings.append(finding)

    def note(self, path: ConfigPath, message: str) -> None:
        """Record an accepted key that has no effect."""
        self.findings.append(Finding(path, message, note=True))

    def where(self, path: ConfigPath) -> str:
        """`key (file:line)` for messages that name two places."""
        origin = self.origins.get(path) or nearest(self.origins, path)
        return f"{format_path(path)} ({origin})" if origin else format_path(path)

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if not f.note]

    # -- reading ---------------------------------------------------------------------------

    def get(self, path: ConfigPath, default: Any = MISSING) -> Any:
        """The value at `path`, or `default` when any part of it is absent."""
        node: Any = self.cfg
        for part in path:
            found = (isinstance(node, Mapping) and part in node) or (
                isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
            )
            if found:
                node = node[part]
            else:
                return default
        return node

    def has(self, path: ConfigPath) -> bool:
        """True when `path` is set to something other than null."""
        return self.get(path, None) is not None

    def section(self, path: ConfigPath, section: Section) -> dict[str, Any]:
        """The mapping at `path` (empty when unset), every key validated against `section`."""
        value = self.get(path, None)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.problem(path, f"{format_path(path)} must be a mapping, got {_show(value)}.")
            return {}
        good: dict[str, Any] = {}
        for key, item in value.items():
            key_path = (*path, key)
            spec = section.keys.get(key)
            if spec is None:
                if section.open:
                    good[key] = item
                    continue
                hint = section.other_spelling.get(key)
                near = (
                    f" {key!r} is the other MMDetection spelling's key; here it is {hint}."
                    if hint
                    else did_you_mean(str(key), section.keys)
                )
                self.problem(
                    key_path,
                    f"{format_path(path)} has no key {key!r}.{near} "
                    f"It takes: {', '.join(section.keys)}.",
                )
                continue
            if not matches(item, spec.hint):
                near = did_you_mean(item, _literals(spec.hint)) if isinstance(item, str) else ""
                self.problem(
                    key_path,
                    f"{format_path(key_path)} must be {describe(spec.hint)}, got {_show(item)}."
                    + near,
                )
                continue
            if spec.no_effect is not None and item is not None:
                self.note(key_path, f"accepted, no effect in detcli: {spec.no_effect}")
            good[key] = item
        return good

    def one_of(self, *paths: ConfigPath) -> tuple[ConfigPath, Any] | None:
        """The one of `paths` (spellings of the same setting) that is set; two set is an error."""
        found = [(p, self.get(p)) for p in paths if self.has(p)]
        if len(found) > 1:
            (a, _), (b, _) = found[0], found[1]
            self.problem(
                b,
                f"{self.where(a)} and {self.where(b)} set the same thing (MMDetection's 2.x and "
                "3.x spellings), so which one applies is ambiguous; keep one of them (--set "
                "KEY=null drops one that a base config sets).",
            )
        return found[0] if found else None

    def positive_int(self, path: ConfigPath, value: Any, *, zero_ok: bool = False) -> int | None:
        """`value` as an int that is positive (or, with `zero_ok`, not negative)."""
        low = 0 if zero_ok else 1
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            what = "a non-negative" if zero_ok else "a positive"
            self.problem(path, f"{format_path(path)} must be {what} integer, got {_show(value)}.")
            return None
        return value


def _literals(hint: Any) -> list[str]:
    """The string values a `Literal[...]` hint (or a union holding one) allows."""
    if typing.get_origin(hint) is typing.Literal:
        return [a for a in typing.get_args(hint) if isinstance(a, str)]
    return [v for arg in typing.get_args(hint) for v in _literals(arg)]


def _show(value: Any) -> str:
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    return f"{type(value).__name__} {text}"

"""Does a config value fit a constructor's type hint? (What `detcli check` reads from signatures.)

Config values come from YAML, so they are dicts, lists, str, int, float, bool or None.
Hints name richer types (tuples, Sequences, Paths, Literals, Tensors); this module decides
which YAML values a user may give for them. What it cannot judge, it accepts.
"""

from __future__ import annotations

import collections.abc as cabc
import inspect
import os
import types
import typing
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from detcli.registry import ComponentOf

_SEQUENCES = (
    list,
    tuple,
    set,
    frozenset,
    cabc.Sequence,
    cabc.MutableSequence,
    cabc.Iterable,
    cabc.Collection,
    cabc.Set,
)
_MAPPINGS = (dict, cabc.Mapping, cabc.MutableMapping)


@dataclass(frozen=True)
class ComponentSlot:
    """An argument that holds a nested component config: one, a list, or lists of them
    (TestTimeAug's `transforms`: a list of alternatives per step)."""

    kind: str
    single: bool
    many: bool
    nested: bool = False


def matches(value: Any, hint: Any) -> bool:
    """True when `value` (from YAML) is acceptable for the type hint `hint`."""
    if hint is inspect.Parameter.empty or hint is Any or hint is object:
        return True
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:
        return matches(value, args[0])
    if hint is None or hint is type(None):
        return value is None
    if origin in (typing.Union, types.UnionType):
        return any(matches(value, a) for a in args)
    if origin is typing.Literal:
        return any(value == a and type(value) is type(a) for a in args)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float or hint is complex:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if inspect.isclass(hint) and issubclass(hint, (PurePath, os.PathLike)):
        return isinstance(value, str)
    container = origin or hint
    if container in _MAPPINGS:
        if not isinstance(value, dict):
            return False
        if len(args) == 2:
            return all(matches(k, args[0]) and matches(v, args[1]) for k, v in value.items())
        return True
    if container in _SEQUENCES:
        if not isinstance(value, list):  # YAML has lists only; a str is not a list of chars here
            return False
        if container is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            return len(value) == len(args) and all(
                matches(v, a) for v, a in zip(value, args, strict=True)
            )
        return not args or all(matches(v, args[0]) for v in value)
    if origin is not None or not inspect.isclass(hint):  # Callable, TypeVar, ...: cannot judge
        return True
    return isinstance(value, hint)


def describe(hint: Any) -> str:
    """A short human name for a type hint: `int`, `list[float]`, `MODELS component | None`."""
    if hint is inspect.Parameter.empty:
        return "any"
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:
        kinds = [m.kind for m in args[1:] if isinstance(m, ComponentOf)]
        return f"{kinds[0]} component" if kinds else describe(args[0])
    if hint is None or hint is type(None):
        return "null"
    if origin in (typing.Union, types.UnionType):
        return " | ".join(describe(a) for a in args)
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        if name in ("Sequence", "MutableSequence", "Iterable", "Collection", "tuple"):
            name = "list"
        elif name in ("Mapping", "MutableMapping"):
            name = "dict"
        inner = ", ".join("..." if a is Ellipsis else describe(a) for a in args)
        return f"{name}[{inner}]" if args else name
    return getattr(hint, "__name__", str(hint))


def component_slot(hint: Any) -> ComponentSlot | None:
    """If the hint marks a nested component config (or a list of them), say which kind."""
    single: str | None = None
    many: str | None = None
    nested: str | None = None
    for option in _union_options(hint):
        if _component_kind(option):
            single = _component_kind(option)
        elif typing.get_origin(option) in _SEQUENCES:
            args = typing.get_args(option)
            if args and _component_kind(args[0]):
                many = _component_kind(args[0])
            elif args and typing.get_origin(args[0]) in _SEQUENCES:
                inner = typing.get_args(args[0])
                nested = _component_kind(inner[0]) if inner else None
    kind = single or many or nested
    if kind is None:
        return None
    return ComponentSlot(kind, single is not None, many is not None, nested is not None)


def _union_options(hint: Any) -> tuple[Any, ...]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)


def _component_kind(hint: Any) -> str | None:
    if typing.get_origin(hint) is typing.Annotated:
        for meta in typing.get_args(hint)[1:]:
            if isinstance(meta, ComponentOf):
                return meta.kind
    return None

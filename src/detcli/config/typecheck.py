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
from pathlib import PurePath
from typing import Any

from detcli.registry import ComponentOf, ComponentSlot, component_slot

__all__ = ["ComponentSlot", "component_slot", "describe", "matches"]

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


def matches(value: Any, hint: Any) -> bool:
    """True when `value` (from YAML) is acceptable for the type hint `hint`."""
    if hint is inspect.Parameter.empty or hint is Any or hint is object:
        return True
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:
        if any(isinstance(m, ComponentOf) for m in args[1:]):
            return isinstance(value, dict)  # a built part is written as a `{type: ...}` mapping
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

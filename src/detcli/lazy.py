"""Package attributes that import their module on first use (PEP 562 `__getattr__`).

`import detcli` (and `detcli.data`, `detcli.engine`, `detcli.inference`) must stay cheap: the
CLI's `--help`, `print-config` and the synthetic-data writer never import torch. A package
names its public attributes and where they live; the first access imports that module.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_attributes(
    package: str, where: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """`__getattr__` and `__dir__` for `package`, whose attribute `name` lives in `where[name]`.

    Use as `__getattr__, __dir__ = lazy_attributes(__name__, {"train": "pkg.training"})`.
    """
    table = dict(where)

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)  # later lookups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *table})

    return __getattr__, __dir__

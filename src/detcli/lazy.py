"""Package attributes that import their module on first use (PEP 562 `__getattr__`).

`import detcli` (and `detcli.data`, `detcli.engine`, `detcli.inference`) must stay cheap: the
CLI's `--help`, `print-config` and the synthetic-data writer never import torch. A package
names the modules its public attributes live in; the first access imports that module.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def lazy_attributes(
    package: str, modules: Mapping[str, Sequence[str]]
) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """`__getattr__`, `__dir__` and `__all__` for `package`, whose public names live in
    `modules` (module -> the names it defines).

    Use as `__getattr__, __dir__, __all__ = lazy_attributes(__name__, {"pkg.mod": ["f"]})`.
    """
    where = {name: module for module, names in modules.items() for name in names}

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)  # later lookups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *where})

    return __getattr__, __dir__, sorted(where)

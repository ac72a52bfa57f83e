"""detcli: train, evaluate and inspect object detectors from YAML configs.

Importing this package is cheap (no torch): the CLI's `--help` and `print-config` rely on it.
`detcli.train` / `evaluate` / `predict` load torch on first use.
"""

from __future__ import annotations

from detcli.errors import DetcliError
from detcli.lazy import lazy_attributes

__version__ = "0.1.0"

__getattr__, __dir__, _lazy = lazy_attributes(
    __name__,
    {
        "detcli.engine.training": ["train"],
        "detcli.inference.evaluate": ["evaluate"],
        "detcli.inference.predict": ["predict"],
    },
)
__all__ = ["DetcliError", "__version__", *_lazy]

"""detcli: train, evaluate and inspect object detectors from YAML configs.

Importing this package is cheap (no torch): the CLI's `--help` and `print-config` rely on it.
"""

from __future__ import annotations

from detcli.errors import DetcliError

__version__ = "0.1.0"

__all__ = ["DetcliError", "__version__"]

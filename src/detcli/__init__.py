"""detcli: train, evaluate and inspect object detectors from YAML configs.

Importing this package is cheap (no torch): the CLI's `--help` and `print-config` rely on it.
"""

from __future__ import annotations

from typing import Any

from detcli.errors import DetcliError

__version__ = "0.1.0"

__all__ = ["DetcliError", "__version__", "evaluate", "predict", "train"]


def __getattr__(name: str) -> Any:
    """`detcli.train` / `evaluate` / `predict` load torch on first use, not on `import detcli`."""
    if name == "train":
        from detcli.engine.training import train

        return train
    if name == "evaluate":
        from detcli.inference.evaluate import evaluate

        return evaluate
    if name == "predict":
        from detcli.inference.predict import predict

        return predict
    raise AttributeError(f"module 'detcli' has no attribute {name!r}")

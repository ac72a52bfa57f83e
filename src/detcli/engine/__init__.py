"""Training engine: runner, hooks, optimizers, schedules, checkpoints, inference.

`from detcli.engine import train, inference`; the names load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "train": "detcli.engine.training",
    "TrainResult": "detcli.engine.training",
    "inference": "detcli.engine.inference_loop",
    "Runner": "detcli.engine.runner",
    "TrainingInterrupted": "detcli.engine.runner",
    "load_checkpoint": "detcli.engine.checkpoint",
    "load_weights": "detcli.engine.checkpoint",
    "weights_of": "detcli.engine.checkpoint",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'detcli.engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value

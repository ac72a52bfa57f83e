"""Training engine: runner, hooks, optimizers, schedules, checkpoints, inference.

`from detcli.engine import train, inference`; the names load on first use.
"""

from __future__ import annotations

from detcli.lazy import lazy_attributes

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

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)

"""Training engine: runner, hooks, optimizers, schedules, checkpoints, inference.

`from detcli.engine import train, inference`; the names load on first use.
"""

from __future__ import annotations

from detcli.lazy import lazy_attributes

__getattr__, __dir__, __all__ = lazy_attributes(
    __name__,
    {
        "detcli.engine.training": ["train", "TrainResult"],
        "detcli.engine.inference_loop": ["inference"],
        "detcli.engine.runner": ["Runner", "TrainingInterrupted"],
        "detcli.engine.checkpoint": ["load_checkpoint", "load_weights", "weights_of"],
    },
)

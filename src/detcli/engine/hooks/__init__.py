"""Hooks the runner calls (registered in HOOKS under mmdet's names)."""

from detcli.engine.hooks.base import PRIORITIES, Hook, priority_value
from detcli.engine.hooks.checkpoint import CheckpointHook
from detcli.engine.hooks.early_stopping import EarlyStoppingHook
from detcli.engine.hooks.ema import EMAHook, ExpMomentumEMAHook
from detcli.engine.hooks.evaluation import EvalHook
from detcli.engine.hooks.logger import TensorboardLoggerHook, TextLoggerHook
from detcli.engine.hooks.misc import (
    DistSamplerSeedHook,
    EmptyCacheHook,
    IterTimerHook,
    NumClassCheckHook,
    ParamSchedulerHook,
)
from detcli.engine.hooks.visualization import DetVisualizationHook

__all__ = [
    "PRIORITIES",
    "CheckpointHook",
    "DetVisualizationHook",
    "DistSamplerSeedHook",
    "EMAHook",
    "EarlyStoppingHook",
    "EmptyCacheHook",
    "EvalHook",
    "ExpMomentumEMAHook",
    "Hook",
    "IterTimerHook",
    "NumClassCheckHook",
    "ParamSchedulerHook",
    "TensorboardLoggerHook",
    "TextLoggerHook",
    "priority_value",
]

"""Importing this module registers the engine's components (schedulers, hooks, metrics)."""

from detcli.engine import hooks, param_schedulers  # noqa: F401  (decorators register them)
from detcli.evaluation import coco_metric  # noqa: F401

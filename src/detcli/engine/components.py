"""Importing this module registers the engine's components (schedulers, hooks, metrics)."""

from detcli.engine import param_schedulers  # noqa: F401  (decorators register them)

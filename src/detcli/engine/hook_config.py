"""The hooks of a run, from its `HookSettings` and `EvalSettings` (either config spelling)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from detcli.config.settings import RunSettings
from detcli.engine.hooks.base import Hook
from detcli.errors import ConfigError, RegistryError
from detcli.registry import HOOKS


def build_hook(cfg: Mapping[str, Any], where: str, **defaults: Any) -> tuple[Hook, Any]:
    """(hook, priority or None) from `{type, priority?, **args}`; errors name `where`."""
    if not isinstance(cfg, Mapping) or "type" not in cfg:
        raise ConfigError(f"{where} must be a mapping with a hook `type`, got {cfg!r}.")
    args = {k: v for k, v in cfg.items() if k != "priority"}
    for key, value in defaults.items():
        args.setdefault(key, value)
    try:
        hook = HOOKS.build(args)
    except RegistryError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if not isinstance(hook, Hook):
        raise ConfigError(f"{where}: {cfg['type']} is not a Hook subclass.")
    return hook, cfg.get("priority")


def config_hooks(settings: RunSettings) -> list[tuple[Hook, Any]]:
    """Every hook of a run, with its priority (None: the hook's default)."""
    hooks = [
        build_hook({"type": "ParamSchedulerHook"}, "ParamSchedulerHook"),
        build_hook({"type": "IterTimerHook"}, "IterTimerHook"),
        build_hook({"type": "DistSamplerSeedHook"}, "DistSamplerSeedHook"),
    ]
    spec = settings.hooks
    if spec.checkpoint is not None:
        hooks.append(build_hook({"type": "CheckpointHook", **spec.checkpoint}, "checkpoint hook"))
    for i, hook in enumerate(spec.loggers):
        hooks.append(build_hook(hook, f"logger hook {i} ({hook.get('type')})"))
    evaluation = settings.evaluation
    if evaluation.during_training:
        args = {
            "interval": evaluation.interval,
            "by_epoch": evaluation.by_epoch,
            "start": evaluation.start,
            "begin": evaluation.begin,
            "save_best": evaluation.save_best,
            "rule": evaluation.rule,
            "metric_cfg": evaluation.metrics_for("val"),
        }
        hooks.append(build_hook({"type": "EvalHook", **args}, "evaluation"))
    if spec.visualization is not None:
        hooks.append(build_hook(spec.visualization, "default_hooks.visualization"))
    for i, hook in enumerate(spec.custom):
        hooks.append(build_hook(hook, f"custom_hooks.{i}"))
    return hooks

"""The hooks a config asks for: the standard ones, `checkpoint_config`, `log_config`,
`evaluation` and `custom_hooks` (each `{type: ..., priority: ...}`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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


def config_hooks(cfg: Mapping[str, Any]) -> list[tuple[Hook, Any]]:
    """Every hook of a run, with its priority (None: the hook's default)."""
    hooks = [
        build_hook({"type": "ParamSchedulerHook"}, "ParamSchedulerHook"),
        build_hook({"type": "IterTimerHook"}, "IterTimerHook"),
        build_hook({"type": "DistSamplerSeedHook"}, "DistSamplerSeedHook"),
    ]
    checkpoint = cfg.get("checkpoint_config")
    if checkpoint is not None:
        hooks.append(build_hook({"type": "CheckpointHook", **checkpoint}, "checkpoint_config"))
    log_config = cfg.get("log_config") or {"interval": 50, "hooks": [{"type": "TextLoggerHook"}]}
    interval = log_config.get("interval", 10)
    for i, hook in enumerate(log_config.get("hooks") or []):
        hooks.append(build_hook(hook, f"log_config.hooks.{i}", interval=interval))
    evaluation = cfg.get("evaluation")
    val_evaluator = cfg.get("val_evaluator")
    if evaluation is not None or val_evaluator is not None:
        args = dict(evaluation or {})
        if val_evaluator is not None:
            args["metric_cfg"] = val_evaluator
        hooks.append(build_hook({"type": "EvalHook", **args}, "evaluation"))
    for i, hook in enumerate(cfg.get("custom_hooks") or []):
        hooks.append(build_hook(hook, f"custom_hooks.{i}"))
    return hooks

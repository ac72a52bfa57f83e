"""Optimizers: every `torch.optim` optimizer, by its class name (`type: SGD`, `type: AdamW`).

`build_optimizer` turns an `optimizer` config (plus an optional `paramwise_cfg`) into a torch
optimizer over the model's trainable parameters, grouped by their lr/decay multipliers.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from detcli.engine.paramwise import Rules, param_groups
from detcli.errors import ConfigError
from detcli.registry import OPTIMIZERS, Registry


def register_torch_optimizers(registry: Registry) -> None:
    """Register each public `torch.optim.Optimizer` subclass under its class name."""
    for name, obj in vars(torch.optim).items():
        if (
            inspect.isclass(obj)
            and issubclass(obj, torch.optim.Optimizer)
            and obj is not torch.optim.Optimizer
            and not name.startswith("_")
        ):
            registry.add(obj, name=name)


def build_optimizer(
    model: nn.Module,
    cfg: Mapping[str, Any],
    paramwise_cfg: Mapping[str, Any] | None = None,
    *,
    where: str = "optimizer",
) -> torch.optim.Optimizer:
    """A torch optimizer from `{type: SGD, lr: ..., ...}` over `model`'s trainable parameters.

    `paramwise_cfg` may also sit inside `cfg` (the mmdet 2.x spelling); `where` names the
    config key in error messages.
    """
    args = {k: v for k, v in cfg.items() if k not in ("type", "paramwise_cfg", "constructor")}
    constructor = cfg.get("constructor")
    if constructor not in (None, "DefaultOptimizerConstructor"):
        raise ConfigError(
            f"{where}.constructor: {constructor!r} is not supported; detcli groups parameters "
            "with DefaultOptimizerConstructor's rules (`paramwise_cfg`). Remove the key."
        )
    rules: Rules = "mmengine"  # `optim_wrapper.paramwise_cfg`
    if "paramwise_cfg" in cfg:
        rules = "mmcv"  # mmdet 2.x keeps it inside `optimizer`
        if paramwise_cfg is not None:
            raise ConfigError(
                f"`paramwise_cfg` is set twice ({where}.paramwise_cfg and the optimizer "
                "wrapper's); keep one."
            )
        paramwise_cfg = cfg["paramwise_cfg"]
    if "type" not in cfg:
        raise ConfigError(f"{where} needs a `type` (an optimizer class such as SGD or AdamW).")
    if "lr" not in args:
        raise ConfigError(f"{where} needs `lr` (the base learning rate).")
    wd = args.get("weight_decay")  # absent: the optimizer's own default (AdamW's 0.01)
    groups = param_groups(
        model,
        float(args["lr"]),
        None if wd is None else float(wd),
        paramwise_cfg or {},
        rules=rules,
    )
    if not groups:
        raise ConfigError(
            f"{where}: the model has no trainable parameters (every parameter has "
            "requires_grad=False); check `frozen_stages` and `norm_cfg.requires_grad`."
        )
    try:
        return OPTIMIZERS.build({"type": cfg["type"], **args}, params=groups)  # type: ignore[no-any-return]
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: cannot build {cfg['type']}: {exc}") from None

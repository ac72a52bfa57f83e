"""Optimizers: every `torch.optim` optimizer, by its class name (`type: SGD`, `type: AdamW`)."""

from __future__ import annotations

import inspect

import torch

from detcli.registry import Registry


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

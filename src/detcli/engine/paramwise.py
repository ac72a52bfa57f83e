"""Per-parameter learning rates and weight decays (`paramwise_cfg`), mmdet's rules.

- `custom_keys: {backbone: {lr_mult: 0.1, decay_mult: 0.9}}`: a parameter whose full name
  contains a key takes that key's multipliers (the longest matching key wins, ties
  alphabetically) and no other rule applies to it;
- otherwise `norm_decay_mult` applies to normalization layers' weight and bias,
  `dwconv_decay_mult` to depthwise convolutions, `bias_decay_mult` / `bias_lr_mult` to the
  other biases.

Parameters with equal multipliers share one optimizer group (mmdet makes one group per
parameter; the optimizer math is the same, and a few groups step much faster than thousands).
Frozen parameters (`requires_grad=False`) are left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from detcli.errors import ConfigError
from detcli.suggest import did_you_mean

PARAMWISE_KEYS = (
    "custom_keys",
    "bias_lr_mult",
    "bias_decay_mult",
    "norm_decay_mult",
    "dwconv_decay_mult",
    "bypass_duplicate",
)
CUSTOM_KEY_KEYS = ("lr_mult", "decay_mult")
NORM_LAYERS = (
    nn.modules.batchnorm._BatchNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.GroupNorm,
    nn.LayerNorm,
)


def param_groups(
    model: nn.Module, base_lr: float, base_wd: float, paramwise_cfg: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Optimizer parameter groups for `model`: the (1x lr, 1x decay) group first."""
    cfg = _validated(paramwise_cfg)
    custom = cfg.get("custom_keys", {})
    keys = sorted(sorted(custom), key=len, reverse=True)
    groups: dict[tuple[float, float], dict[str, Any]] = {
        (1.0, 1.0): {"params": [], "lr": base_lr, "weight_decay": base_wd}
    }
    seen: set[int] = set()
    for module_name, module in model.named_modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue  # shared parameters step once, in the first group that met them
            seen.add(id(param))
            full_name = f"{module_name}.{name}" if module_name else name
            lr_mult, decay_mult = _multipliers(module, name, full_name, keys, custom, cfg)
            group = groups.setdefault(
                (lr_mult, decay_mult),
                {"params": [], "lr": base_lr * lr_mult, "weight_decay": base_wd * decay_mult},
            )
            group["params"].append(param)
    result = []
    for (lr_mult, decay_mult), group in groups.items():
        if group["params"]:
            group["lr_mult"], group["decay_mult"] = lr_mult, decay_mult
            result.append(group)
    return result


def _multipliers(
    module: nn.Module,
    name: str,
    full_name: str,
    keys: list[str],
    custom: Mapping[str, Mapping[str, float]],
    cfg: Mapping[str, Any],
) -> tuple[float, float]:
    for key in keys:
        if key in full_name:
            return float(custom[key].get("lr_mult", 1.0)), float(custom[key].get("decay_mult", 1.0))
    is_norm = isinstance(module, NORM_LAYERS)
    is_dwconv = isinstance(module, nn.Conv2d) and module.in_channels == module.groups > 1
    lr_mult = decay_mult = 1.0
    if name == "bias" and not is_norm:
        lr_mult = float(cfg.get("bias_lr_mult", 1.0))
    if is_norm:
        decay_mult = float(cfg.get("norm_decay_mult", 1.0))
    elif is_dwconv:
        decay_mult = float(cfg.get("dwconv_decay_mult", 1.0))
    elif name == "bias":
        decay_mult = float(cfg.get("bias_decay_mult", 1.0))
    return lr_mult, decay_mult


def _validated(cfg: Mapping[str, Any]) -> Mapping[str, Any]:
    """Unknown keys are typos that would silently train with the default multipliers."""
    if not isinstance(cfg, Mapping):
        raise ConfigError(f"paramwise_cfg must be a mapping, got {cfg!r}.")
    for key in cfg:
        if key not in PARAMWISE_KEYS:
            raise ConfigError(
                f"paramwise_cfg has no key {key!r}.{did_you_mean(key, PARAMWISE_KEYS)} "
                f"Known keys: {', '.join(PARAMWISE_KEYS)}."
            )
    custom = cfg.get("custom_keys", {})
    if not isinstance(custom, Mapping):
        raise ConfigError(f"paramwise_cfg.custom_keys must be a mapping, got {custom!r}.")
    for key, value in custom.items():
        if not isinstance(value, Mapping) or any(k not in CUSTOM_KEY_KEYS for k in value):
            raise ConfigError(
                f"paramwise_cfg.custom_keys.{key} must be a mapping with lr_mult and/or "
                f"decay_mult, got {value!r}."
            )
    return cfg

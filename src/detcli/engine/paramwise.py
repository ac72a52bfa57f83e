"""Per-parameter learning rates and weight decays (`paramwise_cfg`), mmcv's and mmengine's rules.

- `custom_keys: {backbone: {lr_mult: 0.1, decay_mult: 0.9}}`: a parameter whose full name
  contains a key takes that key's multipliers (the longest matching key wins, ties
  alphabetically; a missing one is 1) and no other rule applies to it;
- otherwise `bias_lr_mult` applies to biases (not normalization layers'), and the first
  decay rule that fits: `norm_decay_mult` (normalization layers' weight and bias),
  `bias_decay_mult` (other biases), `dwconv_decay_mult` (depthwise convolutions: in_channels
  == groups), `flat_decay_mult` (any other 1-D parameter). mmcv 1.x (mmdet 2.x, where
  `paramwise_cfg` sits inside `optimizer`) tries the depthwise rule before the bias rule and
  has no flat rule: `rules="mmcv"`;
- a parameter shared by two modules is an error (torch refuses one parameter in two groups)
  unless `bypass_duplicate: true`, which adds it once, as the first module met it.

Parameters with equal multipliers share one optimizer group (mmdet makes one group per
parameter; the optimizer math is the same, and a few groups step much faster than thousands).
Frozen parameters (`requires_grad=False`) are left out. Without `weight_decay` in the
optimizer config no group sets one, so the optimizer's own default (AdamW's 0.01) holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from torch import nn

from detcli.errors import ConfigError
from detcli.suggest import did_you_mean

PARAMWISE_KEYS = (
    "custom_keys",
    "bias_lr_mult",
    "bias_decay_mult",
    "norm_decay_mult",
    "dwconv_decay_mult",
    "flat_decay_mult",
    "bypass_duplicate",
    "dcn_offset_lr_mult",  # only deformable convolutions' offsets: detcli has none, so no effect
)
CUSTOM_KEY_KEYS = ("lr_mult", "decay_mult")
NORM_LAYERS = (
    nn.modules.batchnorm._BatchNorm,
    nn.modules.instancenorm._InstanceNorm,
    nn.GroupNorm,
    nn.LayerNorm,
)
Rules = Literal["mmcv", "mmengine"]


def param_groups(
    model: nn.Module,
    base_lr: float,
    base_wd: float | None,
    paramwise_cfg: Mapping[str, Any],
    *,
    rules: Rules = "mmengine",
) -> list[dict[str, Any]]:
    """Optimizer parameter groups for `model`: the (1x lr, 1x decay) group first.

    `base_wd` None (no `weight_decay` configured) leaves each group's decay to the optimizer.
    """
    cfg = _validated(paramwise_cfg)
    custom = cfg.get("custom_keys", {})
    keys = sorted(sorted(custom), key=len, reverse=True)
    groups: dict[tuple[float, float], dict[str, Any]] = {}
    groups[(1.0, 1.0)] = _group(base_lr, base_wd, 1.0, 1.0)
    first_name: dict[int, str] = {}
    # remove_duplicate=False: a module registered under two names is met twice, as mmengine's
    # recursion meets it, so sharing is seen (and refused or bypassed) the same way
    for module_name, module in model.named_modules(remove_duplicate=False):
        for name, param in module.named_parameters(recurse=False):
            full_name = f"{module_name}.{name}" if module_name else name
            if not param.requires_grad:
                continue
            if id(param) in first_name:
                if cfg and not cfg.get("bypass_duplicate", False):
                    raise ConfigError(
                        f"paramwise_cfg: the parameter {full_name} is the same tensor as "
                        f"{first_name[id(param)]} (a shared module or tied weights), and one "
                        "parameter cannot sit in two optimizer groups. Set "
                        "paramwise_cfg.bypass_duplicate: true to add it once."
                    )
                continue
            first_name[id(param)] = full_name
            lr_mult, decay_mult = _multipliers(module, name, param, full_name, keys, cfg, rules)
            key = (lr_mult, decay_mult)
            if key not in groups:
                groups[key] = _group(base_lr, base_wd, lr_mult, decay_mult)
            groups[key]["params"].append(param)
    result = []
    for (lr_mult, decay_mult), group in groups.items():
        if group["params"]:
            group["lr_mult"], group["decay_mult"] = lr_mult, decay_mult
            result.append(group)
    return result


def _group(
    base_lr: float, base_wd: float | None, lr_mult: float, decay_mult: float
) -> dict[str, Any]:
    group: dict[str, Any] = {"params": [], "lr": base_lr * lr_mult}
    if base_wd is not None:
        group["weight_decay"] = base_wd * decay_mult
    return group


def _multipliers(
    module: nn.Module,
    name: str,
    param: nn.Parameter,
    full_name: str,
    keys: list[str],
    cfg: Mapping[str, Any],
    rules: Rules,
) -> tuple[float, float]:
    custom = cfg.get("custom_keys", {})
    for key in keys:
        if key in full_name:
            return float(custom[key].get("lr_mult", 1.0)), float(custom[key].get("decay_mult", 1.0))
    is_norm = isinstance(module, NORM_LAYERS)
    # mmcv's and mmengine's test: a 1-input-channel convolution counts as depthwise too
    is_dwconv = isinstance(module, nn.Conv2d) and module.in_channels == module.groups
    is_bias = name == "bias"
    lr_mult = float(cfg.get("bias_lr_mult", 1.0)) if is_bias and not is_norm else 1.0
    # mmengine: the first rule that is set and fits; mmcv: the first that fits (an unset
    # multiplier is 1), trying depthwise before bias
    decay_rules = [
        ("norm_decay_mult", is_norm),
        ("bias_decay_mult", is_bias),
        ("dwconv_decay_mult", is_dwconv),
        ("flat_decay_mult", param.ndim == 1),
    ]
    if rules == "mmcv":
        decay_rules[1], decay_rules[2] = decay_rules[2], decay_rules[1]
        decay_rules.pop()
    for key, fits in decay_rules:
        if fits and (rules == "mmcv" or key in cfg):
            return lr_mult, float(cfg[key])
    return lr_mult, 1.0


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

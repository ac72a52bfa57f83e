"""Small building blocks the necks and heads share: norm layers from `norm_cfg`, ConvModule."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from detcli.errors import ModelError

NORM_TYPES = ("BN", "SyncBN", "GN")


def build_norm(cfg: Mapping[str, Any], channels: int, where: str) -> nn.Module:
    """A norm layer from `{type: BN | SyncBN | GN, ...}`; `requires_grad: false` freezes it."""
    kind = cfg.get("type", "BN")
    extra = {k: v for k, v in cfg.items() if k not in ("type", "requires_grad")}
    try:
        if kind == "BN":
            layer: nn.Module = nn.BatchNorm2d(channels, **extra)
        elif kind == "SyncBN":
            layer = nn.SyncBatchNorm(channels, **extra)
        elif kind == "GN":
            layer = nn.GroupNorm(num_channels=channels, **extra)
        else:
            raise ModelError(
                f"{where}: norm type {kind!r} is not supported; use one of {', '.join(NORM_TYPES)}."
            )
    except TypeError as exc:
        raise ModelError(f"{where}: bad norm_cfg {dict(cfg)!r}: {exc}.") from None
    for p in layer.parameters():
        p.requires_grad = bool(cfg.get("requires_grad", True))
    return layer


class ConvModule(nn.Sequential):
    """conv -> optional norm -> optional ReLU; the conv has a bias only when there is no norm."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        norm_cfg: Mapping[str, Any] | None = None,
        relu: bool = False,
        where: str = "conv",
    ):
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride, padding, bias=norm_cfg is None
        )
        if norm_cfg is not None:
            self.norm = build_norm(norm_cfg, out_channels, where)
        if relu:
            self.act = nn.ReLU(inplace=True)


def xavier_init(module: nn.Module) -> None:
    """Uniform Xavier weights and zero biases for every conv / linear inside `module`."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

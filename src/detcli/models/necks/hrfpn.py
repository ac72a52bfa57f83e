"""HRFPN (for HRNet): upsample every branch to the finest, concatenate, reduce, pool to levels."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from detcli.errors import ModelError
from detcli.models.layers import ConvModule, xavier_init
from detcli.models.necks.base import PyramidNeck
from detcli.registry import MODELS


@MODELS.register()
class HRFPN(PyramidNeck):
    """mmdet's HRFPN: one fused map, then `num_outs` levels by 2^i pooling and a 3x3 conv each."""

    def __init__(
        self,
        out_channels: int,
        in_channels: Sequence[int] | None = None,
        num_outs: int = 5,
        pooling_type: str = "AVG",
        norm_cfg: dict[str, Any] | None = None,
        with_cp: bool = False,
        stride: int = 1,
        init_cfg: dict[str, Any] | list[dict[str, Any]] | None = None,
    ):
        super().__init__()
        if pooling_type not in ("AVG", "MAX"):
            raise ModelError(f"HRFPN: pooling_type must be AVG or MAX, got {pooling_type!r}.")
        self.out_channels = out_channels
        self.num_outs = num_outs
        self.stride = stride
        self.with_cp = with_cp
        self.norm_cfg = norm_cfg
        self.pooling = F.max_pool2d if pooling_type == "MAX" else F.avg_pool2d
        self.init_cfg = init_cfg
        self.build_when_known(in_channels)

    def _build(self, in_channels: list[int]) -> None:
        self.in_channels = in_channels
        out_channels, norm_cfg = self.out_channels, self.norm_cfg
        self.reduction_conv = ConvModule(sum(in_channels), out_channels, 1, norm_cfg=norm_cfg)
        self.fpn_convs = nn.ModuleList(
            ConvModule(
                out_channels, out_channels, 3, stride=self.stride, padding=1, norm_cfg=norm_cfg
            )
            for _ in range(self.num_outs)
        )
        xavier_init(self)

    def output_strides(self, in_strides: Sequence[int]) -> list[int]:
        """Strides of the outputs: the finest input's, times `stride`, doubling per level."""
        return [in_strides[0] * self.stride * 2**i for i in range(self.num_outs)]

    def forward(self, inputs: Sequence[Tensor]) -> list[Tensor]:
        """`num_outs` maps with `out_channels` channels, finest first."""
        in_channels = self.wired_in_channels()
        if len(inputs) != len(in_channels):
            raise ModelError(
                f"HRFPN gets {len(inputs)} branches but in_channels lists {len(in_channels)}."
            )
        size = inputs[0].shape[2:]
        fused = torch.cat(
            [inputs[0]]
            + [
                F.interpolate(x, size=size, mode="bilinear", align_corners=False)
                for x in inputs[1:]
            ],
            dim=1,
        )
        if self.with_cp and fused.requires_grad:
            out = checkpoint(self.reduction_conv, fused, use_reentrant=False)
        else:
            out = self.reduction_conv(fused)
        levels = [out] + [
            self.pooling(out, kernel_size=2**i, stride=2**i) for i in range(1, self.num_outs)
        ]
        return [conv(level) for conv, level in zip(self.fpn_convs, levels, strict=True)]

"""FPN (mmdet's keys): lateral 1x1 convs, top-down sum, 3x3 output convs, extra levels on top."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from detcli.errors import ModelError
from detcli.models.layers import ConvModule, xavier_init
from detcli.models.necks.base import PyramidNeck
from detcli.registry import MODELS

EXTRA_SOURCES = ("on_input", "on_lateral", "on_output")


@MODELS.register()
class FPN(PyramidNeck):
    """Feature pyramid over backbone levels `start_level..end_level`, `num_outs` outputs in all.

    Levels beyond the backbone's come from a stride-1 max-pool of the last output
    (`add_extra_convs: false`) or from stride-2 3x3 convs on the input, lateral or output.
    `in_channels` may be left out: the detector then takes it from the backbone (`wire`).
    """

    def __init__(
        self,
        out_channels: int,
        num_outs: int,
        in_channels: Sequence[int] | None = None,
        start_level: int = 0,
        end_level: int = -1,
        add_extra_convs: bool | str = False,
        relu_before_extra_convs: bool = False,
        no_norm_on_lateral: bool = False,
        norm_cfg: dict[str, Any] | None = None,
        act_cfg: dict[str, Any] | None = None,
        upsample_cfg: dict[str, Any] | None = None,
        init_cfg: dict[str, Any] | list[dict[str, Any]] | None = None,
    ):
        super().__init__()
        self.out_channels = out_channels
        self.num_outs = num_outs
        self.start_level = start_level
        self.end_level = end_level
        if add_extra_convs is True:
            add_extra_convs = "on_input"
        if add_extra_convs and add_extra_convs not in EXTRA_SOURCES:
            raise ModelError(
                f"FPN: add_extra_convs {add_extra_convs!r} must be true, false or one of "
                f"{', '.join(EXTRA_SOURCES)}."
            )
        self.add_extra_convs = add_extra_convs
        self.relu_before_extra_convs = relu_before_extra_convs
        self.no_norm_on_lateral = no_norm_on_lateral
        self.norm_cfg = norm_cfg
        self.relu = _relu(act_cfg)
        self.upsample_cfg = dict(upsample_cfg or {"mode": "nearest"})
        self.init_cfg = init_cfg
        self.build_when_known(in_channels)

    def _build(self, in_channels: list[int]) -> None:
        num_ins = len(in_channels)
        start_level, end_level, num_outs = self.start_level, self.end_level, self.num_outs
        if end_level in (-1, num_ins - 1):
            self.backbone_end_level = num_ins
            if num_outs < num_ins - start_level:
                raise ModelError(
                    f"FPN: num_outs {num_outs} is fewer than the {num_ins - start_level} backbone "
                    f"levels it uses (in_channels from start_level {start_level})."
                )
        else:
            if not 0 <= end_level < num_ins or num_outs != end_level - start_level + 1:
                raise ModelError(
                    f"FPN: end_level {end_level} must be < {num_ins} and num_outs must equal "
                    "end_level - start_level + 1."
                )
            self.backbone_end_level = end_level + 1
        if not 0 <= start_level < self.backbone_end_level:
            raise ModelError(f"FPN: start_level {start_level} is outside 0..{num_ins - 1}.")
        self.in_channels = in_channels
        out_channels, norm_cfg, relu = self.out_channels, self.norm_cfg, self.relu
        self.lateral_convs = nn.ModuleList(
            ConvModule(
                in_channels[i],
                out_channels,
                1,
                norm_cfg=None if self.no_norm_on_lateral else norm_cfg,
                relu=relu,
                where="FPN lateral conv",
            )
            for i in range(start_level, self.backbone_end_level)
        )
        self.fpn_convs = nn.ModuleList(
            ConvModule(out_channels, out_channels, 3, padding=1, norm_cfg=norm_cfg, relu=relu)
            for _ in range(start_level, self.backbone_end_level)
        )
        extra_levels = num_outs - self.backbone_end_level + start_level
        if self.add_extra_convs:
            for i in range(extra_levels):
                in_ch = out_channels
                if i == 0 and self.add_extra_convs == "on_input":
                    in_ch = in_channels[self.backbone_end_level - 1]
                self.fpn_convs.append(
                    ConvModule(
                        in_ch, out_channels, 3, stride=2, padding=1, norm_cfg=norm_cfg, relu=relu
                    )
                )
        xavier_init(self)

    def output_strides(self, in_strides: Sequence[int]) -> list[int]:
        """Strides of the outputs, given the strides of the backbone levels fed in."""
        strides = list(in_strides[self.start_level : self.backbone_end_level])
        while len(strides) < self.num_outs:
            strides.append(strides[-1] * 2)
        return strides

    def forward(self, inputs: Sequence[Tensor]) -> list[Tensor]:
        """Pyramid levels, finest first, each with `out_channels` channels."""
        in_channels = self.wired_in_channels()
        if len(inputs) != len(in_channels):
            raise ModelError(
                f"FPN gets {len(inputs)} feature maps but in_channels lists "
                f"{len(in_channels)}; match in_channels to the backbone's out_indices."
            )
        laterals = [conv(inputs[i + self.start_level]) for i, conv in enumerate(self.lateral_convs)]
        for i in range(len(laterals) - 1, 0, -1):
            if "scale_factor" in self.upsample_cfg:
                up = F.interpolate(laterals[i], **self.upsample_cfg)
            else:
                up = F.interpolate(laterals[i], size=laterals[i - 1].shape[2:], **self.upsample_cfg)
            laterals[i - 1] = laterals[i - 1] + up
        used = len(laterals)
        outs = [self.fpn_convs[i](laterals[i]) for i in range(used)]
        if self.num_outs > used:
            if not self.add_extra_convs:
                for _ in range(self.num_outs - used):
                    outs.append(F.max_pool2d(outs[-1], 1, stride=2))
            else:
                source = {
                    "on_input": inputs[self.backbone_end_level - 1],
                    "on_lateral": laterals[-1],
                    "on_output": outs[-1],
                }[self.add_extra_convs]
                outs.append(self.fpn_convs[used](source))
                for i in range(used + 1, self.num_outs):
                    x = F.relu(outs[-1]) if self.relu_before_extra_convs else outs[-1]
                    outs.append(self.fpn_convs[i](x))
        return outs


def _relu(act_cfg: dict[str, Any] | None) -> bool:
    if act_cfg is None:
        return False
    if act_cfg.get("type") != "ReLU":
        raise ModelError(f"neck act_cfg {act_cfg!r}: only null or {{type: ReLU}} is supported.")
    return True

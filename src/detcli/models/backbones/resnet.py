"""ResNet and ResNeXt backbones: mmdet's keys (depth, groups, base_width), built by timm."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import timm
from timm.models.resnet import Bottleneck
from torch import nn

from detcli.errors import ModelError
from detcli.models.backbones.timm_features import TimmFeatures
from detcli.registry import MODELS

RESNET_DEPTHS = (18, 34, 50, 101, 152)
STYLES = ("pytorch", "caffe")


def _stage_indices(num_stages: int, out_indices: Sequence[int], owner: str) -> list[int]:
    """mmdet's stage indices (0 = first residual stage) as timm feature indices (0 = stem)."""
    if not 1 <= num_stages <= 4:
        raise ModelError(f"{owner}: num_stages must be 1 to 4, got {num_stages}.")
    bad = [i for i in out_indices if not 0 <= i < num_stages]
    if bad or not out_indices:
        raise ModelError(
            f"{owner}: out_indices {list(out_indices)} must be stage numbers 0 to "
            f"{num_stages - 1} (num_stages is {num_stages})."
        )
    return [i + 1 for i in out_indices]


def _resnet_kwargs(
    in_channels: int,
    style: str,
    deep_stem: bool,
    avg_down: bool,
    stem_channels: int | None,
    zero_init_residual: bool,
    owner: str,
) -> dict[str, Any]:
    if style not in STYLES:
        raise ModelError(
            f"{owner}: style {style!r} is not available; use pytorch (stride in the 3x3 conv) "
            "or caffe (stride in the first 1x1 conv, for *caffe* weights)."
        )
    kwargs: dict[str, Any] = {"in_chans": in_channels, "zero_init_last": zero_init_residual}
    if deep_stem:
        kwargs.update(stem_type="deep", stem_width=(stem_channels or 64) // 2)
    elif stem_channels not in (None, 64):
        kwargs["stem_width"] = stem_channels
    if avg_down:
        kwargs["avg_down"] = True
    return kwargs


@MODELS.register()
class ResNet(TimmFeatures):
    """ResNet-18/34/50/101/152 (timm `resnetN`); out_indices count residual stages from 0.

    `base_channels` is the first stage's width (doubling per stage), as in mmdet; the plain
    stem stays 64 wide (timm's), so a narrow mmdet ResNet matches with `stem_channels=64`.
    """

    def __init__(
        self,
        depth: int,
        in_channels: int = 3,
        num_stages: int = 4,
        out_indices: Sequence[int] = (0, 1, 2, 3),
        style: str = "pytorch",
        deep_stem: bool = False,
        avg_down: bool = False,
        stem_channels: int | None = None,
        frozen_stages: int = -1,
        norm_cfg: dict[str, Any] | None = None,
        norm_eval: bool = True,
        with_cp: bool = False,
        zero_init_residual: bool = True,
        init_cfg: dict[str, Any] | None = None,
        base_channels: int = 64,
    ):
        owner = type(self).__name__
        kwargs = _resnet_kwargs(
            in_channels, style, deep_stem, avg_down, stem_channels, zero_init_residual, owner
        )
        if base_channels != 64:
            if base_channels < 1:
                raise ModelError(f"{owner}: base_channels must be positive, got {base_channels}.")
            kwargs["channels"] = tuple(base_channels * 2**i for i in range(4))
        super().__init__(
            self.timm_network(depth),
            _stage_indices(num_stages, out_indices, owner),
            frozen_stages=frozen_stages,
            norm_cfg=norm_cfg,
            norm_eval=norm_eval,
            init_cfg=init_cfg,
            with_cp=with_cp,
            create_kwargs=kwargs,
        )
        self.style = style
        if style == "caffe":
            use_caffe_strides(self.body)

    def timm_network(self, depth: int) -> str:
        """The timm model this backbone builds."""
        if depth not in RESNET_DEPTHS:
            raise ModelError(
                f"ResNet: depth {depth} is not available; use one of "
                f"{', '.join(map(str, RESNET_DEPTHS))} (or TimmBackbone for other timm nets)."
            )
        return f"resnet{depth}"


def use_caffe_strides(body: nn.Module) -> int:
    """Move each downsampling bottleneck's stride from its 3x3 conv to its first 1x1 conv.

    mmdet's `style: caffe` (`conv1_stride, conv2_stride = stride, 1`). Weight shapes do not
    change, so the same checkpoints load; BasicBlocks (depth 18/34) have no 1x1 conv and stay
    as they are, as in mmdet. Returns how many blocks were changed.
    """
    moved = 0
    for block in body.modules():
        if isinstance(block, Bottleneck) and block.conv2.stride != (1, 1):
            block.conv1.stride, block.conv2.stride = block.conv2.stride, (1, 1)
            moved += 1
    return moved


def resnext_variants() -> dict[tuple[int, int, int], str]:
    """(depth, groups, base_width) -> timm model name, for every plain ResNeXt timm has."""
    found = {}
    for name in timm.list_models("resnext*"):
        m = re.fullmatch(r"resnext(\d+)_(\d+)x(\d+)d", name)
        if m:
            found[(int(m[1]), int(m[2]), int(m[3]))] = name
    return found


@MODELS.register()
class ResNeXt(ResNet):
    """ResNeXt (timm `resnext{depth}_{groups}x{base_width}d`), e.g. 101 / 64 / 4.

    Every other argument is ResNet's (`detcli check` reads them from ResNet's signature).
    """

    def __init__(self, depth: int, groups: int = 1, base_width: int = 4, **kwargs: Any):
        self.groups = groups  # read by timm_network(), which ResNet's __init__ calls
        self.base_width = base_width
        super().__init__(depth, **kwargs)

    def timm_network(self, depth: int) -> str:
        """The timm ResNeXt with this depth, cardinality (groups) and base width."""
        variants = resnext_variants()
        name = variants.get((depth, self.groups, self.base_width))
        if name is None:
            listed = ", ".join(f"{d}/{g}/{w}" for d, g, w in sorted(variants))
            raise ModelError(
                f"ResNeXt: no timm network has depth {depth}, groups {self.groups}, base_width "
                f"{self.base_width}. Available depth/groups/base_width: {listed}."
            )
        return name

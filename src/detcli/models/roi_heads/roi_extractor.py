"""RoI feature extraction: RoIAlign / RoIPool layers and SingleRoIExtractor (one level per RoI)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torchvision.ops import roi_align, roi_pool

from detcli.errors import ModelError
from detcli.models.shapes import UNWIRED, FeatureMaps, RoIFeatures, Wiring
from detcli.registry import MODELS, Model


@MODELS.register()
class RoIAlign(nn.Module):
    """torchvision's roi_align with mmdet's keys (`aligned: true` = half-pixel-correct sampling)."""

    def __init__(
        self,
        output_size: int | Sequence[int],
        spatial_scale: float = 1.0,
        sampling_ratio: int = 0,
        pool_mode: str = "avg",
        aligned: bool = True,
    ):
        super().__init__()
        if pool_mode != "avg":
            raise ModelError(
                "RoIAlign: only pool_mode 'avg' exists in torchvision; use RoIPool for max."
            )
        self.output_size = as_pair(output_size)
        self.spatial_scale = spatial_scale
        self.sampling_ratio = sampling_ratio
        self.aligned = aligned

    def forward(self, feat: Tensor, rois: Tensor) -> Tensor:
        """(K, C, h, w) features of rois (K, 5) `batch_index, x1, y1, x2, y2` in image pixels."""
        return self.pool(feat, rois, self.spatial_scale)

    def pool(self, feat: Tensor, rois: Tensor, spatial_scale: float) -> Tensor:
        """`forward` on a map whose pixels are `1 / spatial_scale` image pixels."""
        pooled: Tensor = roi_align(  # torchvision ships no types: its results are Any
            feat,
            rois.to(feat.dtype),
            self.output_size,
            spatial_scale,
            self.sampling_ratio,
            self.aligned,
        )
        return pooled


@MODELS.register()
class RoIPool(nn.Module):
    """torchvision's roi_pool (max over each bin)."""

    def __init__(self, output_size: int | Sequence[int], spatial_scale: float = 1.0):
        super().__init__()
        self.output_size = as_pair(output_size)
        self.spatial_scale = spatial_scale

    def forward(self, feat: Tensor, rois: Tensor) -> Tensor:
        """(K, C, h, w) features of rois (K, 5)."""
        return self.pool(feat, rois, self.spatial_scale)

    def pool(self, feat: Tensor, rois: Tensor, spatial_scale: float) -> Tensor:
        """`forward` on a map whose pixels are `1 / spatial_scale` image pixels."""
        pooled: Tensor = roi_pool(feat, rois.to(feat.dtype), self.output_size, spatial_scale)
        return pooled


def rois_from(boxes: Sequence[Tensor]) -> Tensor:
    """(K, 5) `image_index, x1, y1, x2, y2` from per-image boxes (n_i, >=4)."""
    return torch.cat(
        [torch.cat([b.new_full((b.shape[0], 1), i), b[:, :4]], dim=1) for i, b in enumerate(boxes)]
    )


def as_pair(size: int | Sequence[int]) -> tuple[int, int]:
    """(size, size) for an int, else its first two entries."""
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


@MODELS.register()
class SingleRoIExtractor(nn.Module):
    """Pool each RoI from one pyramid level chosen by its size.

    level = floor(log2(sqrt(area) / finest_scale)), clamped to the levels; RoIs
    up to `finest_scale * 2` pixels across use the finest map (stride `featmap_strides[0]`).
    """

    def __init__(
        self,
        roi_layer: Model[RoIAlign | RoIPool],
        out_channels: int | None = None,
        featmap_strides: Sequence[int] | None = None,
        finest_scale: int = 56,
        init_cfg: dict[str, Any] | list[dict[str, Any]] | None = None,
    ):
        super().__init__()
        self.roi_layer = roi_layer
        self.out_channels = out_channels
        self.featmap_strides = list(featmap_strides) if featmap_strides is not None else None
        self.finest_scale = finest_scale
        self.output_size: tuple[int, int] = roi_layer.output_size
        self.init_cfg = init_cfg

    def wire(self, inputs: FeatureMaps, wiring: Wiring) -> RoIFeatures:
        """Take `out_channels` and `featmap_strides` from the maps it pools (or check them).

        Left out, `featmap_strides` is the finest four levels': in every mmdet config the
        fifth FPN level feeds only the RPN.
        """
        levels = min(len(self.featmap_strides or (0,) * 4), len(inputs.strides))
        strides = list(inputs.strides[:levels])
        if self.featmap_strides is None:
            self.featmap_strides = strides
        elif self.featmap_strides != list(inputs.strides[: len(self.featmap_strides)]):
            wiring.report(
                "featmap_strides",
                f"featmap_strides is {self.featmap_strides}, but {inputs.source} outputs levels "
                f"with strides {list(inputs.strides)}; RoIs are pooled from the first levels, so "
                f"use {strides}.",
            )
        channels = inputs.uniform_channels
        if channels is None:
            wiring.report(
                "out_channels",
                f"{inputs.source} outputs levels with {list(inputs.channels)} channels; RoIs "
                "are pooled from any level, so every level needs the same (add a neck).",
            )
            channels = inputs.channels[0]
        why = f"{inputs.source} outputs {channels} channels"
        self.out_channels = wiring.agree("out_channels", self.out_channels, channels, why)
        return RoIFeatures(self.out_channels, self.output_size)

    @property
    def num_inputs(self) -> int:
        """How many pyramid levels it reads (the first ones)."""
        if self.featmap_strides is None:
            raise ModelError(UNWIRED.format(part="SingleRoIExtractor"))
        return len(self.featmap_strides)

    def map_roi_levels(self, rois: Tensor) -> Tensor:
        """The level index of each RoI (K,)."""
        scale = torch.sqrt((rois[:, 3] - rois[:, 1]) * (rois[:, 4] - rois[:, 2]))
        levels = torch.floor(torch.log2(scale / self.finest_scale + 1e-6))
        return levels.clamp(min=0, max=self.num_inputs - 1).long()

    def forward(self, feats: Sequence[Tensor], rois: Tensor) -> Tensor:
        """(K, C, h, w) RoI features; `feats` are the neck's levels, finest first."""
        num_inputs = self.num_inputs
        assert self.featmap_strides is not None and self.out_channels is not None  # wired
        if len(feats) < num_inputs:
            raise ModelError(
                f"SingleRoIExtractor has {self.num_inputs} featmap_strides but gets only "
                f"{len(feats)} feature maps; shorten featmap_strides or raise the neck's num_outs."
            )
        if feats[0].shape[1] != self.out_channels:
            raise ModelError(
                f"SingleRoIExtractor: out_channels is {self.out_channels} but the features have "
                f"{feats[0].shape[1]} channels; set it to the neck's out_channels."
            )
        scales = [1.0 / s for s in self.featmap_strides]
        if num_inputs == 1:
            return self.roi_layer.pool(feats[0], rois, scales[0])
        # RoIs sorted by level, then one RoIAlign call per level on its slice: the level sizes
        # are the one host read, not a nonzero per level.
        levels = self.map_roi_levels(rois)
        order = torch.argsort(levels, stable=True)
        counts = torch.bincount(levels, minlength=self.num_inputs).tolist()
        out = feats[0].new_empty((rois.shape[0], self.out_channels, *self.output_size))
        parts = zip(
            scales,
            feats,
            torch.split(order, counts),
            torch.split(rois[order], counts),
            strict=False,
        )
        for scale, feat, inds, part in parts:
            if inds.numel():  # every row is written once: no zero fill, no concatenation
                out.index_copy_(0, inds, self.roi_layer.pool(feat, part, scale).to(out.dtype))
        return out

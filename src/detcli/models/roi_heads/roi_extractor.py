"""RoI feature extraction: RoIAlign / RoIPool layers and SingleRoIExtractor (one level per RoI)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torchvision.ops import roi_align, roi_pool

from detcli.errors import ModelError
from detcli.registry import MODELS


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
        self.output_size = _pair(output_size)
        self.spatial_scale = spatial_scale
        self.sampling_ratio = sampling_ratio
        self.aligned = aligned

    def forward(self, feat: Tensor, rois: Tensor) -> Tensor:
        """(K, C, h, w) features of rois (K, 5) `batch_index, x1, y1, x2, y2` in image pixels."""
        return roi_align(
            feat,
            rois.to(feat.dtype),
            self.output_size,
            self.spatial_scale,
            self.sampling_ratio,
            self.aligned,
        )


@MODELS.register()
class RoIPool(nn.Module):
    """torchvision's roi_pool (max over each bin)."""

    def __init__(self, output_size: int | Sequence[int], spatial_scale: float = 1.0):
        super().__init__()
        self.output_size = _pair(output_size)
        self.spatial_scale = spatial_scale

    def forward(self, feat: Tensor, rois: Tensor) -> Tensor:
        """(K, C, h, w) features of rois (K, 5)."""
        return roi_pool(feat, rois.to(feat.dtype), self.output_size, self.spatial_scale)


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


@MODELS.register()
class SingleRoIExtractor(nn.Module):
    """Pool each RoI from one pyramid level chosen by its size.

    level = floor(log2(sqrt(area) / finest_scale)), clamped to the levels; RoIs
    up to `finest_scale * 2` pixels across use the finest map (stride `featmap_strides[0]`).
    """

    def __init__(
        self,
        roi_layer: dict[str, Any],
        out_channels: int,
        featmap_strides: Sequence[int],
        finest_scale: int = 56,
        init_cfg: dict[str, Any] | None = None,
    ):
        super().__init__()
        self.out_channels = out_channels
        self.featmap_strides = list(featmap_strides)
        self.finest_scale = finest_scale
        self.roi_layers = nn.ModuleList(
            MODELS.build({**roi_layer, "spatial_scale": 1.0 / s}) for s in self.featmap_strides
        )
        self.output_size: tuple[int, int] = self.roi_layers[0].output_size

    @property
    def num_inputs(self) -> int:
        """How many pyramid levels it reads (the first ones)."""
        return len(self.featmap_strides)

    def map_roi_levels(self, rois: Tensor) -> Tensor:
        """The level index of each RoI (K,)."""
        scale = torch.sqrt((rois[:, 3] - rois[:, 1]) * (rois[:, 4] - rois[:, 2]))
        levels = torch.floor(torch.log2(scale / self.finest_scale + 1e-6))
        return levels.clamp(min=0, max=self.num_inputs - 1).long()

    def forward(self, feats: Sequence[Tensor], rois: Tensor) -> Tensor:
        """(K, C, h, w) RoI features; `feats` are the neck's levels, finest first."""
        if len(feats) < self.num_inputs:
            raise ModelError(
                f"SingleRoIExtractor has {self.num_inputs} featmap_strides but gets only "
                f"{len(feats)} feature maps; shorten featmap_strides or raise the neck's num_outs."
            )
        if feats[0].shape[1] != self.out_channels:
            raise ModelError(
                f"SingleRoIExtractor: out_channels is {self.out_channels} but the features have "
                f"{feats[0].shape[1]} channels; set it to the neck's out_channels."
            )
        if self.num_inputs == 1:
            return self.roi_layers[0](feats[0], rois)
        # RoIs sorted by level, then one RoIAlign call per level on its slice: the level sizes
        # are the one host read, not a nonzero per level.
        levels = self.map_roi_levels(rois)
        order = torch.argsort(levels, stable=True)
        counts = torch.bincount(levels, minlength=self.num_inputs).tolist()
        out = feats[0].new_empty((rois.shape[0], self.out_channels, *self.output_size))
        parts = zip(
            self.roi_layers, feats, order.split(counts), rois[order].split(counts), strict=True
        )
        for layer, feat, inds, part in parts:
            if inds.numel():  # every row is written once: no zero fill, no concatenation
                out.index_copy_(0, inds, layer(feat, part).to(out.dtype))
        return out

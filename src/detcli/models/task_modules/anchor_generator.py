"""AnchorGenerator: base anchors per level (scales x ratios) laid on each feature map's grid."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from detcli.errors import ModelError
from detcli.registry import MODELS


@MODELS.register()
class AnchorGenerator:
    """mmdet's AnchorGenerator: one set of `len(scales) * len(ratios)` anchors per feature cell.

    Two switches reproduce torchvision's AnchorGenerator (for its checkpoints):
    `round_base_anchors` rounds the base anchors to whole pixels, and `strides_from_input`
    takes each level's stride as (input size // feature-map size), input size being the first
    level's size times its stride; that differs from the nominal stride where padding left a
    level's size odd (e.g. 64 becomes 61 on an 800 px high input, torchvision's behaviour).
    """

    def __init__(
        self,
        strides: Sequence[int | Sequence[int]],
        ratios: Sequence[float],
        scales: Sequence[float] | None = None,
        base_sizes: Sequence[int] | None = None,
        scale_major: bool = True,
        octave_base_scale: float | None = None,
        scales_per_octave: int | None = None,
        centers: Sequence[Sequence[float]] | None = None,
        center_offset: float = 0.0,
        round_base_anchors: bool = False,
        strides_from_input: bool = False,
    ):
        self.strides = [(s, s) if isinstance(s, int | float) else (s[0], s[1]) for s in strides]
        self.base_sizes = (
            list(base_sizes) if base_sizes is not None else [min(s) for s in self.strides]
        )
        if len(self.base_sizes) != len(self.strides):
            raise ModelError(
                f"AnchorGenerator: base_sizes has {len(self.base_sizes)} entries but strides has "
                f"{len(self.strides)}; give one base size per level."
            )
        if (scales is None) == (octave_base_scale is None):
            raise ModelError(
                "AnchorGenerator: set either `scales` or `octave_base_scale` with "
                "`scales_per_octave`, not both and not neither."
            )
        if scales is not None:
            self.scales = [float(s) for s in scales]
        else:
            n = int(scales_per_octave or 1)
            self.scales = [float(octave_base_scale or 1) * 2 ** (i / n) for i in range(n)]
        self.ratios = [float(r) for r in ratios]
        if centers is not None and len(centers) != len(self.strides):
            raise ModelError("AnchorGenerator: `centers` needs one (x, y) per level.")
        self.centers = centers
        self.center_offset = center_offset
        self.scale_major = scale_major
        self.round_base_anchors = round_base_anchors
        self.strides_from_input = strides_from_input
        self.base_anchors = [
            self._base_anchors(size, None if centers is None else centers[i])
            for i, size in enumerate(self.base_sizes)
        ]
        self._cache: dict[tuple[object, ...], list[Tensor]] = {}
        self._flat_cache: dict[tuple[object, ...], Tensor] = {}
        self._valid_cache: tuple[object, Tensor, Tensor] | None = None
        self._cells_cache: dict[tuple[object, ...], Tensor] = {}

    @property
    def num_levels(self) -> int:
        """How many feature levels the anchors cover (one stride each)."""
        return len(self.strides)

    @property
    def num_base_anchors(self) -> int:
        """Anchors per feature-map cell (the same on every level)."""
        return len(self.scales) * len(self.ratios)

    def _base_anchors(self, base_size: float, center: Sequence[float] | None) -> Tensor:
        w = h = float(base_size)
        cx, cy = (self.center_offset * w, self.center_offset * h) if center is None else center
        ratios = torch.tensor(self.ratios, dtype=torch.float32, device="cpu")
        scales = torch.tensor(self.scales, dtype=torch.float32, device="cpu")
        h_ratios = ratios.sqrt()
        w_ratios = 1 / h_ratios
        if self.scale_major:
            ws = (w * w_ratios[:, None] * scales[None, :]).reshape(-1)
            hs = (h * h_ratios[:, None] * scales[None, :]).reshape(-1)
        else:
            ws = (w * scales[:, None] * w_ratios[None, :]).reshape(-1)
            hs = (h * scales[:, None] * h_ratios[None, :]).reshape(-1)
        base = torch.stack([cx - 0.5 * ws, cy - 0.5 * hs, cx + 0.5 * ws, cy + 0.5 * hs], dim=-1)
        return base.round() if self.round_base_anchors else base

    def grid_anchors(
        self, featmap_sizes: Sequence[tuple[int, int]], device: torch.device | str = "cpu"
    ) -> list[Tensor]:
        """Per level, anchors (H * W * A, 4) ordered by row, column, then base anchor."""
        if len(featmap_sizes) != self.num_levels:
            raise ModelError(
                f"AnchorGenerator has {self.num_levels} strides but the head gets "
                f"{len(featmap_sizes)} feature maps; make `anchor_generator.strides` as long as "
                "the neck's `num_outs`."
            )
        key = (tuple(featmap_sizes), str(device))
        if key not in self._cache:
            self._cache.clear()  # one input size at a time is the common case
            self._cache[key] = [
                self._level_anchors(base.to(device), size, stride)
                for base, size, stride in zip(
                    self.base_anchors, featmap_sizes, self._grid_strides(featmap_sizes), strict=True
                )
            ]
        return self._cache[key]

    def _grid_strides(self, featmap_sizes: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
        """(x, y) stride per level: nominal, or input size // feature size (torchvision)."""
        if not self.strides_from_input:
            return self.strides
        in_h = featmap_sizes[0][0] * self.strides[0][1]
        in_w = featmap_sizes[0][1] * self.strides[0][0]
        return [(in_w // w, in_h // h) for h, w in featmap_sizes]

    def flat_anchors(
        self, featmap_sizes: Sequence[tuple[int, int]], device: torch.device | str = "cpu"
    ) -> Tensor:
        """All levels' anchors in one (N, 4) tensor, cached like `grid_anchors` (no cat a step)."""
        key = (tuple(featmap_sizes), str(device))
        if key not in self._flat_cache:
            self._flat_cache.clear()
            self._flat_cache[key] = torch.cat(self.grid_anchors(featmap_sizes, device))
        return self._flat_cache[key]

    @staticmethod
    def _level_anchors(base: Tensor, size: tuple[int, int], stride: tuple[int, int]) -> Tensor:
        h, w = size
        xs = torch.arange(w, device=base.device, dtype=torch.float32) * stride[0]
        ys = torch.arange(h, device=base.device, dtype=torch.float32) * stride[1]
        yy, xx = torch.meshgrid(ys, xs, indexing="ij")
        shifts = torch.stack([xx, yy, xx, yy], dim=-1).reshape(-1, 1, 4)
        return (shifts + base[None]).reshape(-1, 4)

    def valid_flags(
        self, featmap_sizes: Sequence[tuple[int, int]], pad_shapes: Tensor
    ) -> list[Tensor]:
        """Per level, (B, H * W * A) bool: the cell lies inside each image's own padded area.

        `pad_shapes` (B, 2) holds each image's (h, w) before batch padding; cells beyond it
        only see the zeros collate added and get no anchors.
        """
        counts = [h * w * self.num_base_anchors for h, w in featmap_sizes]
        return list(torch.split(self.flat_valid_flags(featmap_sizes, pad_shapes), counts, dim=1))

    def flat_valid_flags(
        self, featmap_sizes: Sequence[tuple[int, int]], pad_shapes: Tensor
    ) -> Tensor:
        """`valid_flags` of all levels in one (B, N) tensor, the order of `flat_anchors`."""
        key = tuple(featmap_sizes)
        # The sizes tensors come cached (models.meta), so the same object means the same
        # batch layout: the flags of the last call are reused, computed once per layout.
        if self._valid_cache is not None:
            last_key, last_pad, last_flags = self._valid_cache
            if last_key == key and last_pad is pad_shapes:
                return last_flags
        cell_y, cell_x, stride_y, stride_x = self._cells(key, pad_shapes.device).unbind(0)
        pad = pad_shapes.float()
        # A cell index below ceil(pad / stride) lies inside; one comparison for every level.
        flags = (cell_y < torch.ceil(pad[:, 0:1] / stride_y)) & (
            cell_x < torch.ceil(pad[:, 1:2] / stride_x)
        )
        self._valid_cache = (key, pad_shapes, flags)
        return flags

    def _cells(self, featmap_sizes: tuple[tuple[int, int], ...], device: torch.device) -> Tensor:
        """(4, N) per anchor of all levels: its cell row, column and the level's y / x stride.

        Cached per feature-map sizes, like the anchors: valid flags then cost a few ops a step.
        """
        key = (featmap_sizes, str(device))
        if key not in self._cells_cache:
            self._cells_cache.clear()
            levels = []
            for (h, w), (sx, sy) in zip(featmap_sizes, self.strides, strict=True):
                ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
                cells = torch.stack(
                    [
                        ys.reshape(-1),
                        xs.reshape(-1),
                        torch.full_like(ys, sy).reshape(-1),
                        torch.full_like(xs, sx).reshape(-1),
                    ]
                ).float()
                levels.append(cells.repeat_interleave(self.num_base_anchors, dim=1))
            self._cells_cache[key] = torch.cat(levels, 1).to(device)
        return self._cells_cache[key]

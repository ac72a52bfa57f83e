"""DeltaXYWHBBoxCoder: boxes <-> normalised (dx, dy, dw, dh) deltas with means/stds, clipping."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from detcli.errors import ModelError
from detcli.registry import MODELS


@MODELS.register()
class DeltaXYWHBBoxCoder:
    """Encode a box relative to a reference box as centre shift and log size ratio (R-CNN style).

    `clamp_shrink: false` bounds only the growth of width/height deltas (torchvision's
    BoxCoder), not their shrinking as well (mmdet). `weights` is torchvision's spelling of
    the stds (10, 10, 5, 5 = stds 0.1, 0.1, 0.2, 0.2): deltas are divided by the weights
    rather than multiplied by 1 / weights, which gives torchvision's floats bit for bit.
    """

    def __init__(
        self,
        target_means: Sequence[float] = (0.0, 0.0, 0.0, 0.0),
        target_stds: Sequence[float] = (1.0, 1.0, 1.0, 1.0),
        clip_border: bool = True,
        add_ctr_clamp: bool = False,
        ctr_clamp: int = 32,
        clamp_shrink: bool = True,
        weights: Sequence[float] | None = None,
    ):
        if weights is not None:
            if len(weights) != 4 or any(float(w) <= 0 for w in weights):
                raise ModelError(
                    f"DeltaXYWHBBoxCoder: weights needs 4 positive numbers, got {list(weights)}."
                )
            target_stds = [1.0 / float(w) for w in weights]
        self.weights = None if weights is None else tuple(float(w) for w in weights)
        if len(target_means) != 4 or len(target_stds) != 4:
            raise ModelError(
                "DeltaXYWHBBoxCoder: target_means and target_stds need 4 numbers each "
                f"(dx, dy, dw, dh), got {list(target_means)} and {list(target_stds)}."
            )
        self.means = tuple(float(m) for m in target_means)
        self.stds = tuple(float(s) for s in target_stds)
        self.clip_border = clip_border
        self.add_ctr_clamp = add_ctr_clamp
        self.ctr_clamp = ctr_clamp
        self.clamp_shrink = clamp_shrink
        self.encode_size = 4
        self.has_means = any(m != 0 for m in self.means)
        self.has_stds = any(s != 1 for s in self.stds)
        self._stats_cache: dict[tuple[torch.device, torch.dtype], tuple[Tensor, Tensor]] = {}

    def _stats(self, like: Tensor) -> tuple[Tensor, Tensor]:
        key = (like.device, like.dtype)
        if key not in self._stats_cache:  # one host-to-device copy per device, not per call
            stats = torch.tensor([self.means, self.stds], dtype=like.dtype, device=like.device)
            self._stats_cache[key] = (stats[0], stats[1])
        return self._stats_cache[key]

    def encode(self, bboxes: Tensor, gt_bboxes: Tensor) -> Tensor:
        """Deltas (..., 4) that move `bboxes` (..., 4) onto `gt_bboxes` (..., 4)."""
        # (x, y) pairs as slices, not one select per coordinate: fewer ops, same arithmetic.
        bboxes, gt_bboxes = bboxes.float(), gt_bboxes.float()
        pwh = bboxes[..., 2:] - bboxes[..., :2]
        pxy = bboxes[..., :2] + 0.5 * pwh
        gwh = gt_bboxes[..., 2:] - gt_bboxes[..., :2]
        gxy = gt_bboxes[..., :2] + 0.5 * gwh
        deltas = torch.cat([(gxy - pxy) / pwh, torch.log(gwh / pwh)], dim=-1)
        means, stds = self._stats(deltas)
        if self.has_means:  # zero means and unit stds (the usual) cost no ops
            deltas = deltas - means
        if self.weights is not None:
            return deltas * deltas.new_tensor(self.weights)
        return deltas / stds if self.has_stds else deltas

    def decode(
        self,
        bboxes: Tensor,
        deltas: Tensor,
        max_shape: Tensor | Sequence[int] | None = None,
        wh_ratio_clip: float = 16 / 1000,
    ) -> Tensor:
        """Boxes from reference `bboxes` (..., 4) and `deltas` (..., 4k): (..., 4k).

        `max_shape` is (h, w), or a tensor (..., 2) broadcastable against the leading dims,
        used to clip boxes to the image when `clip_border` is set.
        """
        k = deltas.shape[-1] // 4
        d = deltas.reshape(*deltas.shape[:-1], k, 4).float()
        means, stds = self._stats(d)
        if self.weights is not None:
            d = d / d.new_tensor(self.weights)
        elif self.has_stds:
            d = d * stds
        if self.has_means:
            d = d + means
        max_ratio = abs(math.log(wh_ratio_clip))
        dxy = d[..., :2]
        if self.add_ctr_clamp:
            dxy = dxy.clamp(-self.ctr_clamp, self.ctr_clamp)
        dwh = d[..., 2:].clamp(-max_ratio if self.clamp_shrink else None, max_ratio)
        b = bboxes.float().unsqueeze(-2)
        pwh = b[..., 2:] - b[..., :2]
        pxy = b[..., :2] + 0.5 * pwh
        gwh = pwh * dwh.exp()
        gxy = pxy + pwh * dxy
        out = torch.cat([gxy - 0.5 * gwh, gxy + 0.5 * gwh], dim=-1)
        if self.clip_border and max_shape is not None:
            out = clip_boxes(out, max_shape)
        return out.reshape(*deltas.shape[:-1], 4 * k)


def clip_boxes(boxes: Tensor, max_shape: Tensor | Sequence[int]) -> Tensor:
    """Clamp xyxy `boxes` (..., k, 4) into [0, w] x [0, h]; `max_shape` (h, w) or (..., 2)."""
    if not isinstance(max_shape, Tensor):
        max_shape = torch.tensor(max_shape[:2], dtype=boxes.dtype, device=boxes.device)
    hw = max_shape.to(boxes.dtype)
    while hw.dim() < boxes.dim():  # (..., 2) -> (..., 1, 2) against boxes (..., k, 4)
        hw = hw.unsqueeze(-2)
    upper = hw.flip(-1).repeat(*([1] * (hw.dim() - 1)), 2)  # (w, h, w, h)
    return torch.minimum(boxes.clamp(min=0), upper)

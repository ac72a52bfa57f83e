"""Pairwise IoU / IoF of two box sets, vectorised (degenerate boxes give 0, never NaN)."""

from __future__ import annotations

import torch
from torch import Tensor


def bbox_overlaps(boxes1: Tensor, boxes2: Tensor, mode: str = "iou", eps: float = 1e-6) -> Tensor:
    """(..., N, M) overlaps of xyxy boxes (..., N, 4) and (..., M, 4), leading dims batched.

    `iof` divides by the area of `boxes1` (intersection over foreground).
    """
    # (x, y) pairs as slices and areas as products: a third of the ops of per-coordinate math.
    lt = torch.maximum(boxes1[..., :, None, :2], boxes2[..., None, :, :2])
    rb = torch.minimum(boxes1[..., :, None, 2:], boxes2[..., None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area1 = _area(boxes1)
    if mode == "iof":
        return inter / area1[..., :, None].clamp(min=eps)
    union = area1[..., :, None] + _area(boxes2)[..., None, :] - inter
    return inter / union.clamp(min=eps)


def _area(boxes: Tensor) -> Tensor:
    return (boxes[..., 2:] - boxes[..., :2]).clamp(min=0).prod(-1)

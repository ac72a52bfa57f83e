"""Pairwise IoU / IoF of two box sets, vectorised (degenerate boxes give 0, never NaN)."""

from __future__ import annotations

import torch
from torch import Tensor


def bbox_overlaps(boxes1: Tensor, boxes2: Tensor, mode: str = "iou", eps: float = 1e-6) -> Tensor:
    """(..., N, M) overlaps of xyxy boxes (..., N, 4) and (..., M, 4), leading dims batched.

    `iof` divides by the area of `boxes1` (intersection over foreground).
    """
    area1 = (boxes1[..., 2] - boxes1[..., 0]).clamp(min=0) * (
        boxes1[..., 3] - boxes1[..., 1]
    ).clamp(min=0)
    lt = torch.maximum(boxes1[..., :, None, :2], boxes2[..., None, :, :2])
    rb = torch.minimum(boxes1[..., :, None, 2:], boxes2[..., None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    if mode == "iof":
        return inter / area1[..., :, None].clamp(min=eps)
    area2 = (boxes2[..., 2] - boxes2[..., 0]).clamp(min=0) * (
        boxes2[..., 3] - boxes2[..., 1]
    ).clamp(min=0)
    union = area1[..., :, None] + area2[..., None, :] - inter
    return inter / union.clamp(min=eps)

"""Loss reduction shared by every loss: element weights, `avg_factor` and `reduction`."""

from __future__ import annotations

import torch
from torch import Tensor

from detcli.errors import ModelError

REDUCTIONS = ("none", "mean", "sum")


def weight_reduce_loss(
    loss: Tensor,
    weight: Tensor | None = None,
    reduction: str = "mean",
    avg_factor: float | Tensor | None = None,
    loss_weight: float = 1.0,
) -> Tensor:
    """Apply element-wise `weight`, reduce, scale by `loss_weight`.

    With `avg_factor`, `mean` divides the sum by it.
    """
    if weight is not None:
        loss = loss * weight
    if avg_factor is None:
        if reduction == "mean":
            loss = loss.mean()
        elif reduction == "sum":
            loss = loss.sum()
    elif reduction == "mean":
        # eps keeps an image without sampled targets from dividing by zero
        loss = loss.sum() / (avg_factor + torch.finfo(torch.float32).eps)
    elif reduction != "none":
        raise ModelError('avg_factor can only be used with reduction "mean" or "none".')
    # A weight of 1 (the usual) costs no multiply forward and backward.
    return loss if loss_weight == 1.0 else loss * loss_weight


def check_reduction(reduction: str, owner: str) -> str:
    """`reduction` if it is one of none/mean/sum, else a ModelError naming the loss."""
    if reduction not in REDUCTIONS:
        raise ModelError(
            f"{owner}: reduction {reduction!r} is not supported; "
            f"use one of {', '.join(REDUCTIONS)}."
        )
    return reduction


def expand_onehot(labels: Tensor, num_classes: int) -> Tensor:
    """Labels in [0, num_classes] as float one-hot (N, num_classes); background is all zeros."""
    target = labels.new_zeros((labels.shape[0], num_classes + 1), dtype=torch.float32)
    target.scatter_(1, labels.clamp(0, num_classes).unsqueeze(1), 1.0)
    return target[:, :num_classes]

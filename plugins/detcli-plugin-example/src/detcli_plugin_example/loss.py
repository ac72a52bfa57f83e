"""BalancedL1Loss (Libra R-CNN): a box regression loss that lifts the gradient of good boxes.

A detcli box loss is an nn.Module called as `loss(pred, target, weight=None, avg_factor=None,
reduction_override=None)` on (N, 4) encoded deltas, returning a scalar (or (N, 4) with
reduction "none"); heads pass `avg_factor` (the number of sampled targets). A class attribute
`needs_decoded_boxes = True` would ask the head for decoded boxes instead (IoU-style losses).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from detcli.errors import ModelError
from detcli.models.losses.utils import check_reduction, weight_reduce_loss


class BalancedL1Loss(nn.Module):
    """Balanced L1 (MMDetection's keys and formula): steeper than SmoothL1 for small errors.

    With b = e^(gamma/alpha) - 1, the log-shaped piece for |x| < beta and the linear piece
    gamma * |x| + C above it meet at beta with equal value. With beta 1 (the paper's) the
    gradient below beta is alpha * ln(b|x| + 1), rising to gamma at the joint: accurate boxes
    ("inliers") get a larger gradient than under SmoothL1, which balances their share of the
    loss against the few badly placed boxes.
    """

    needs_decoded_boxes = False  # works on the coder's deltas, like L1Loss

    def __init__(
        self,
        alpha: float = 0.5,
        gamma: float = 1.5,
        beta: float = 1.0,
        reduction: str = "mean",
        loss_weight: float = 1.0,
    ):
        super().__init__()
        if alpha <= 0 or gamma <= 0 or beta <= 0:
            raise ModelError(
                f"BalancedL1Loss: alpha, gamma and beta must be positive; got alpha={alpha}, "
                f"gamma={gamma}, beta={beta}."
            )
        self.alpha = alpha
        self.gamma = gamma
        self.beta = beta
        self.reduction = check_reduction(reduction, "BalancedL1Loss")
        self.loss_weight = loss_weight

    def elementwise(self, pred: Tensor, target: Tensor) -> Tensor:
        """The loss per coordinate, before weights and reduction."""
        diff = (pred - target).abs()
        a, g, beta = self.alpha, self.gamma, self.beta
        b = math.exp(g / a) - 1
        inlier = a / b * (b * diff + 1) * torch.log(b * diff / beta + 1) - a * diff
        outlier = g * diff + g / b - a * beta
        return torch.where(diff < beta, inlier, outlier)

    def forward(
        self,
        pred: Tensor,
        target: Tensor,
        weight: Tensor | None = None,
        avg_factor: float | Tensor | None = None,
        reduction_override: str | None = None,
    ) -> Tensor:
        """Weighted loss of predictions (N, 4) against targets (N, 4)."""
        reduction = reduction_override or self.reduction
        if target.numel() == 0:  # no positives: a zero that still reaches every parameter
            return pred.sum() * 0.0
        loss = self.elementwise(pred.float(), target.float())
        if weight is not None:
            weight = weight.float()
            if weight.dim() > loss.dim():
                weight = weight.mean(-1)
        return self.loss_weight * weight_reduce_loss(loss, weight, reduction, avg_factor)

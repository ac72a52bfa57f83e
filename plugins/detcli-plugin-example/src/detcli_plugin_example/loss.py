"""BalancedL1Loss (Libra R-CNN): a box regression loss that lifts the gradient of good boxes.

A detcli box loss is an nn.Module called as `loss(pred, target, weight=None, avg_factor=None,
reduction_override=None)` on (N, 4) encoded deltas, returning a scalar (or (N, 4) with
reduction "none"); heads pass `avg_factor` (the number of sampled targets). detcli's
`RegressionLoss` base does all of that around one method, `elementwise(pred, target)`, so this
file holds only the formula. A class attribute `needs_decoded_boxes = True` would ask the head
for decoded boxes instead (IoU-style losses).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from detcli.errors import ModelError
from detcli.models.losses.regression import RegressionLoss


class BalancedL1Loss(RegressionLoss):
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
        super().__init__(reduction, loss_weight)
        if alpha <= 0 or gamma <= 0 or beta <= 0:
            raise ModelError(
                f"BalancedL1Loss: alpha, gamma and beta must be positive; got alpha={alpha}, "
                f"gamma={gamma}, beta={beta}."
            )
        self.alpha = alpha
        self.gamma = gamma
        self.beta = beta

    def elementwise(self, pred: Tensor, target: Tensor) -> Tensor:
        """The loss per coordinate, before weights and reduction."""
        diff = (pred - target).abs()
        a, g, beta = self.alpha, self.gamma, self.beta
        b = math.exp(g / a) - 1
        inlier = a / b * (b * diff + 1) * torch.log(b * diff / beta + 1) - a * diff
        outlier = g * diff + g / b - a * beta
        return torch.where(diff < beta, inlier, outlier)

"""Box regression losses: L1Loss, SmoothL1Loss (on encoded deltas) and GIoULoss (on boxes)."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import generalized_box_iou_loss

from detcli.models.losses.utils import check_reduction, weight_reduce_loss
from detcli.registry import MODELS


class RegressionLoss(nn.Module):
    """Base of the box losses: subclasses give `elementwise(pred, target)`; this class applies
    the weights, the reduction (`avg_factor` = the number of sampled targets) and `loss_weight`.
    Public so plugins write only their formula (see plugins/detcli-plugin-example)."""

    # IoU-style losses compare boxes, so the head must decode its deltas first.
    needs_decoded_boxes = False

    def __init__(self, reduction: str = "mean", loss_weight: float = 1.0):
        super().__init__()
        self.reduction = check_reduction(reduction, type(self).__name__)
        self.loss_weight = loss_weight

    def elementwise(self, pred: Tensor, target: Tensor) -> Tensor:
        """The loss per coordinate, before weights and reduction."""
        raise NotImplementedError

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
        return weight_reduce_loss(loss, weight, reduction, avg_factor, self.loss_weight)


@MODELS.register()
class L1Loss(RegressionLoss):
    """|pred - target| per coordinate."""

    def __init__(self, reduction: str = "mean", loss_weight: float = 1.0):
        super().__init__(reduction, loss_weight)

    def elementwise(self, pred: Tensor, target: Tensor) -> Tensor:
        return (pred - target).abs()


@MODELS.register()
class SmoothL1Loss(RegressionLoss):
    """Huber-like: quadratic below `beta`, linear above (beta 0 is L1)."""

    def __init__(self, beta: float = 1.0, reduction: str = "mean", loss_weight: float = 1.0):
        super().__init__(reduction, loss_weight)
        self.beta = beta

    def elementwise(self, pred: Tensor, target: Tensor) -> Tensor:
        return F.smooth_l1_loss(pred, target, beta=self.beta, reduction="none")


@MODELS.register()
class GIoULoss(RegressionLoss):
    """1 - generalized IoU of decoded boxes (the head needs `reg_decoded_bbox: true`)."""

    needs_decoded_boxes = True

    def __init__(self, eps: float = 1e-6, reduction: str = "mean", loss_weight: float = 1.0):
        super().__init__(reduction, loss_weight)
        self.eps = eps

    def elementwise(self, pred: Tensor, target: Tensor) -> Tensor:
        # torchvision ships no types: its results are Any
        loss: Tensor = generalized_box_iou_loss(pred, target, reduction="none", eps=self.eps)
        return loss

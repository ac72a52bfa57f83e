"""FocalLoss (sigmoid): down-weights easy examples; torchvision's sigmoid_focal_loss computes it."""

from __future__ import annotations

from torch import Tensor, nn
from torchvision.ops import sigmoid_focal_loss

from detcli.errors import ModelError
from detcli.models.losses.utils import check_reduction, expand_onehot, weight_reduce_loss
from detcli.registry import MODELS


@MODELS.register()
class FocalLoss(nn.Module):
    """Sigmoid focal loss of logits (N, C) against labels (N,), label C meaning background."""

    def __init__(
        self,
        use_sigmoid: bool = True,
        gamma: float = 2.0,
        alpha: float = 0.25,
        reduction: str = "mean",
        loss_weight: float = 1.0,
    ):
        super().__init__()
        if not use_sigmoid:
            raise ModelError("FocalLoss: only the sigmoid form exists; set use_sigmoid: true.")
        self.use_sigmoid = True
        self.gamma = gamma
        self.alpha = alpha
        self.reduction = check_reduction(reduction, "FocalLoss")
        self.loss_weight = loss_weight

    def forward(
        self,
        pred: Tensor,
        target: Tensor,
        weight: Tensor | None = None,
        avg_factor: float | Tensor | None = None,
        reduction_override: str | None = None,
    ) -> Tensor:
        """Focal loss summed over classes per element, then weighted and reduced."""
        reduction = reduction_override or self.reduction
        pred = pred.float()
        onehot = expand_onehot(target, pred.shape[1]) if target.dim() == 1 else target.float()
        loss = sigmoid_focal_loss(
            pred, onehot, alpha=self.alpha, gamma=self.gamma, reduction="none"
        )
        if weight is not None:
            weight = weight.float().unsqueeze(1) if weight.dim() == 1 else weight.float()
        return weight_reduce_loss(loss, weight, reduction, avg_factor, self.loss_weight)

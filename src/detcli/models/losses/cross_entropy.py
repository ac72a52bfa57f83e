"""CrossEntropyLoss: softmax over classes + background, or sigmoid per class (RPN objectness)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from detcli.errors import ModelError
from detcli.models.losses.utils import check_reduction, expand_onehot, weight_reduce_loss
from detcli.registry import MODELS


@MODELS.register()
class CrossEntropyLoss(nn.Module):
    """Cross-entropy on class logits; labels equal to the class count mean background."""

    # A buffer (follows .to(device)); declared so it reads as a tensor, not nn.Module.__getattr__.
    class_weight: Tensor | None

    def __init__(
        self,
        use_sigmoid: bool = False,
        use_mask: bool = False,
        reduction: str = "mean",
        class_weight: Sequence[float] | None = None,
        ignore_index: int | None = None,
        loss_weight: float = 1.0,
        avg_non_ignore: bool = False,
    ):
        super().__init__()
        if use_mask:
            raise ModelError(
                "CrossEntropyLoss: use_mask is for mask heads, which detcli does not have; "
                "remove `use_mask` from the loss config."
            )
        self.use_sigmoid = use_sigmoid
        self.reduction = check_reduction(reduction, "CrossEntropyLoss")
        self.loss_weight = loss_weight
        self.ignore_index = ignore_index
        self.avg_non_ignore = avg_non_ignore
        weight = None if class_weight is None else torch.tensor(class_weight, dtype=torch.float32)
        self.register_buffer("class_weight", weight, persistent=False)

    def forward(
        self,
        cls_score: Tensor,
        label: Tensor,
        weight: Tensor | None = None,
        avg_factor: float | Tensor | None = None,
        reduction_override: str | None = None,
    ) -> Tensor:
        """Loss of logits (N, C) (softmax: C = classes + 1) against int labels (N,)."""
        reduction = reduction_override or self.reduction
        cls_score = cls_score.float()
        ignore = -100 if self.ignore_index is None else self.ignore_index
        valid = label != ignore
        if self.class_weight is not None and self.class_weight.numel() != cls_score.shape[1]:
            raise ModelError(
                f"CrossEntropyLoss: class_weight has {self.class_weight.numel()} entries but the "
                f"head predicts {cls_score.shape[1]} scores per box (softmax heads add one for "
                "background); make `class_weight` that long."
            )
        if self.use_sigmoid:
            target = expand_onehot(
                torch.where(valid, label, cls_score.shape[1]), cls_score.shape[1]
            )
            loss = F.binary_cross_entropy_with_logits(cls_score, target, reduction="none")
            if self.class_weight is not None:
                loss = loss * self.class_weight
            elem_weight = valid.float().unsqueeze(1)
            if weight is not None:
                elem_weight = elem_weight * (
                    weight.float().unsqueeze(1) if weight.dim() == 1 else weight
                )
            weight = elem_weight.expand_as(loss)
        else:
            loss = F.cross_entropy(
                cls_score, label, weight=self.class_weight, reduction="none", ignore_index=ignore
            )
            weight = None if weight is None else weight.float()
        if avg_factor is None and self.avg_non_ignore and reduction == "mean":
            avg_factor = valid.sum().float()
        return weight_reduce_loss(loss, weight, reduction, avg_factor, self.loss_weight)

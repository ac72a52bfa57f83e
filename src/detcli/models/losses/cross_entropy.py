"""CrossEntropyLoss: softmax over classes + background, sigmoid per class (RPN objectness), or
per pixel (`use_mask`: a mask head's binary masks)."""

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
    """Cross-entropy on class logits; labels equal to the class count mean background.

    With `use_mask` it is mmdet's mask loss: binary cross-entropy of each RoI's mask logits
    (its class's channel, chosen by the mask head) against its 0/1 target, averaged over pixels.
    """

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
        if use_mask and use_sigmoid:
            raise ModelError(
                "CrossEntropyLoss: use_mask and use_sigmoid are exclusive (a mask loss is a "
                "per-pixel sigmoid already); keep one of them."
            )
        if use_mask and class_weight is not None:
            raise ModelError(
                "CrossEntropyLoss: class_weight does not apply to a mask loss (use_mask: true), "
                "which scores one class per RoI; remove class_weight."
            )
        self.use_sigmoid = use_sigmoid
        self.use_mask = use_mask
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
        """Loss of logits (N, C) (softmax: C = classes + 1) against int labels (N,).

        `use_mask`: logits (N, h, w) against float targets (N, h, w) in [0, 1].
        """
        reduction = reduction_override or self.reduction
        cls_score = cls_score.float()
        if self.use_mask:
            loss = F.binary_cross_entropy_with_logits(cls_score, label.float(), reduction="none")
            if weight is not None:  # one weight per RoI, or one per pixel
                weight = weight.float().reshape(weight.shape + (1,) * (loss.dim() - weight.dim()))
            return weight_reduce_loss(loss, weight, reduction, avg_factor, self.loss_weight)
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

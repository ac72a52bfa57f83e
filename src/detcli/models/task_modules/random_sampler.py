"""RandomSampler: keep a fixed number of assigned candidates with a target share of positives."""

from __future__ import annotations

import torch
from torch import Tensor

from detcli.models.task_modules.assign_result import AssignResult, SamplingResult
from detcli.registry import MODELS


@MODELS.register()
class RandomSampler:
    """Draw up to `num * pos_fraction` positives at random, then fill `num` with negatives."""

    def __init__(
        self,
        num: int,
        pos_fraction: float,
        neg_pos_ub: float = -1,
        add_gt_as_proposals: bool = True,
    ):
        self.num = num
        self.pos_fraction = pos_fraction
        self.neg_pos_ub = neg_pos_ub
        self.add_gt_as_proposals = add_gt_as_proposals

    def sample(
        self,
        assign_result: AssignResult,
        bboxes: Tensor,
        gt_bboxes: Tensor,
        gt_labels: Tensor | None = None,
    ) -> SamplingResult:
        """Sample positives and negatives of one image (GT boxes join the candidates if set)."""
        bboxes = bboxes[:, :4]
        gt_flags = bboxes.new_zeros((bboxes.shape[0],), dtype=torch.bool)
        if self.add_gt_as_proposals and gt_bboxes.shape[0] > 0:
            if gt_labels is None:
                gt_labels = gt_bboxes.new_zeros((gt_bboxes.shape[0],), dtype=torch.long)
            bboxes = torch.cat([gt_bboxes.to(bboxes.dtype), bboxes])
            assign_result.add_gt_(gt_labels)
            gt_flags = torch.cat([gt_flags.new_ones((gt_bboxes.shape[0],)), gt_flags])
        num_pos_wanted = int(self.num * self.pos_fraction)
        pos_inds = _choose(torch.nonzero(assign_result.gt_inds > 0).flatten(), num_pos_wanted)
        num_neg_wanted = self.num - pos_inds.numel()
        if self.neg_pos_ub >= 0:
            num_neg_wanted = min(num_neg_wanted, int(self.neg_pos_ub * max(1, pos_inds.numel())))
        neg_inds = _choose(torch.nonzero(assign_result.gt_inds == 0).flatten(), num_neg_wanted)
        assigned = assign_result.gt_inds[pos_inds] - 1
        pos_gt = gt_bboxes.new_zeros((0, 4)) if gt_bboxes.numel() == 0 else gt_bboxes[assigned]
        return SamplingResult(
            pos_inds=pos_inds,
            neg_inds=neg_inds,
            bboxes=bboxes,
            pos_gt_bboxes=pos_gt,
            pos_gt_labels=assign_result.labels[pos_inds],
            pos_assigned_gt_inds=assigned,
            pos_is_gt=gt_flags[pos_inds],
        )


def _choose(inds: Tensor, num: int) -> Tensor:
    """At most `num` of `inds`, drawn uniformly without replacement."""
    if inds.numel() <= num:
        return inds
    return inds[torch.randperm(inds.numel(), device=inds.device)[:num]]

"""What an assigner decides for each candidate box, and what a sampler keeps of it."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass
class AssignResult:
    """Per candidate: `gt_inds` 0 = negative, -1 = ignored, k > 0 = matched to GT k - 1."""

    num_gts: int
    gt_inds: Tensor  # int64 (N,)
    max_overlaps: Tensor  # float (N,)
    labels: Tensor  # int64 (N,), -1 where not positive


@dataclass
class BatchAssignResult:
    """`AssignResult` for a padded batch: every field (B, N)."""

    gt_inds: Tensor
    max_overlaps: Tensor
    labels: Tensor


@dataclass
class SamplingResult:
    """The positives and negatives kept for one image, with their matched GT boxes and labels."""

    pos_inds: Tensor
    neg_inds: Tensor
    bboxes: Tensor  # every candidate (GT boxes first when they were added)
    pos_gt_bboxes: Tensor
    pos_gt_labels: Tensor
    pos_assigned_gt_inds: Tensor
    pos_is_gt: Tensor  # bool per positive: it is a GT box added as a proposal

    @property
    def pos_bboxes(self) -> Tensor:
        return self.bboxes[self.pos_inds]

    @property
    def neg_bboxes(self) -> Tensor:
        return self.bboxes[self.neg_inds]

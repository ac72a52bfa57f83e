"""RandomSampler: keep a fixed number of assigned candidates with a target share of positives."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from detcli.models.task_modules.assign_result import AssignResult, SamplingResult
from detcli.registry import MODELS


@dataclass
class BatchSample:
    """What `sample_batch` keeps, per image, in `S` slots: its positives first, then negatives.

    Fixed-size slots instead of per-image index lists keep every size known on the host: no
    nonzero and no host wait, whatever the number of positives.
    """

    inds: Tensor  # int64 (B, S): candidate index of each slot
    is_pos: Tensor  # bool (B, S): the slot holds a sampled positive (always a leading run)
    valid: Tensor  # bool (B, S): the slot holds a sampled positive or negative
    num_pos_slots: int  # positives can only be in the first `num_pos_slots` slots

    @property
    def num_samples(self) -> Tensor:
        """Sampled candidates over the batch (a device scalar)."""
        return self.valid.sum()


def with_gt_as_candidates(
    cands: Tensor,
    gt_inds: Tensor,
    cand_labels: Tensor,
    gt_bboxes: Tensor,
    gt_valid: Tensor | None,
    gt_labels: Tensor,
) -> tuple[Tensor, Tensor, Tensor]:
    """mmdet's `add_gt_as_proposals`: the GT boxes join the candidates, first, each matched to
    itself, over a padded batch: candidates (B, N, 4) with their assignment (B, N), GT (B, G, 4)
    with `gt_valid` (B, G) marking real rows (padding rows are ignored, -1)."""
    if gt_bboxes.shape[1] == 0:
        return cands, gt_inds, cand_labels
    ids = torch.arange(1, gt_bboxes.shape[1] + 1, device=gt_bboxes.device).expand(
        gt_bboxes.shape[0], -1
    )
    own = ids if gt_valid is None else torch.where(gt_valid, ids, -1)
    return (
        torch.cat([gt_bboxes, cands], 1),
        torch.cat([own, gt_inds], 1),
        torch.cat([gt_labels, cand_labels], 1),
    )


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

    def sample_batch(self, gt_inds: Tensor) -> BatchSample:
        """Sample every image of a batch from its assignment `gt_inds` (B, N) at once.

        Each image keeps a uniformly random subset of min(#positives, num * pos_fraction)
        positives and of min(#negatives, num - kept positives) negatives (capped by
        neg_pos_ub), the distribution of drawing with randperm; the draws themselves differ.
        """
        num_imgs, num_cands = gt_inds.shape
        num_pos_slots = min(int(self.num * self.pos_fraction), num_cands)
        num_slots = min(self.num, num_cands)
        # The top-k of i.i.d. uniform keys is a uniformly random subset.
        key = torch.rand((num_imgs, num_cands), device=gt_inds.device)
        pos_key, pos_idx = torch.where(gt_inds > 0, key, -1.0).topk(num_pos_slots, dim=1)
        num_pos = (pos_key >= 0).sum(1, keepdim=True)
        # Priority: kept positives 2, negatives their key in [0, 1), the rest -1; one top-k then
        # lists the kept positives first and fills up with random negatives.
        prio = torch.where(gt_inds == 0, key, -1.0).scatter_reduce(
            1, pos_idx, torch.where(pos_key >= 0, 2.0, -1.0), reduce="amax"
        )
        prio, inds = prio.topk(num_slots, dim=1)
        slot = torch.arange(num_slots, device=gt_inds.device)
        is_pos = slot < num_pos
        valid = prio >= 0  # at most `num` slots, so only neg_pos_ub can drop negatives
        if self.neg_pos_ub >= 0:
            cap = (self.neg_pos_ub * num_pos.clamp(min=1)).floor().long()
            valid = valid & (slot < num_pos + torch.clamp(self.num - num_pos, max=cap))
        return BatchSample(inds, is_pos, valid, num_pos_slots)

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
            cands, gt_inds, labels = with_gt_as_candidates(
                bboxes[None],
                assign_result.gt_inds[None],
                assign_result.labels[None],
                gt_bboxes[None].to(bboxes.dtype),
                None,
                gt_labels[None],
            )
            bboxes = cands[0]
            assign_result.gt_inds, assign_result.labels = gt_inds[0], labels[0]
            overlaps = assign_result.max_overlaps
            assign_result.max_overlaps = torch.cat([overlaps.new_ones(len(gt_labels)), overlaps])
            gt_flags = torch.cat([gt_flags.new_ones((gt_bboxes.shape[0],)), gt_flags])
        s = self.sample_batch(assign_result.gt_inds[None])
        # One image, off the hot path: boolean selection is fine here.
        pos_inds = s.inds[0][s.is_pos[0] & s.valid[0]]
        neg_inds = s.inds[0][~s.is_pos[0] & s.valid[0]]
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

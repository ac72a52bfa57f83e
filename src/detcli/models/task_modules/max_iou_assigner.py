"""MaxIoUAssigner: label each candidate box positive / negative / ignored by its IoU with the GT."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from detcli.errors import ModelError
from detcli.models.task_modules.assign_result import AssignResult
from detcli.models.task_modules.overlaps import bbox_overlaps
from detcli.registry import MODELS


@MODELS.register()
class MaxIoUAssigner:
    """mmdet's MaxIoUAssigner, vectorised over candidates and GT boxes."""

    def __init__(
        self,
        pos_iou_thr: float,
        neg_iou_thr: float | Sequence[float],
        min_pos_iou: float = 0.0,
        gt_max_assign_all: bool = True,
        ignore_iof_thr: float = -1,
        ignore_wrt_candidates: bool = True,
        match_low_quality: bool = True,
        gpu_assign_thr: int = -1,
        iou_calculator: dict[str, str] | None = None,
    ):
        if iou_calculator not in (None, {"type": "BboxOverlaps2D"}):
            raise ModelError(
                f"MaxIoUAssigner: iou_calculator {iou_calculator!r} is not supported; "
                "only {type: BboxOverlaps2D} (plain IoU)."
            )
        if not isinstance(neg_iou_thr, int | float) and len(neg_iou_thr) != 2:
            raise ModelError(
                "MaxIoUAssigner: neg_iou_thr is one number or a [low, high) pair, "
                f"got {list(neg_iou_thr)}."
            )
        self.pos_iou_thr = pos_iou_thr
        self.neg_iou_thr = neg_iou_thr
        self.min_pos_iou = min_pos_iou
        self.gt_max_assign_all = gt_max_assign_all
        self.ignore_iof_thr = ignore_iof_thr
        self.ignore_wrt_candidates = ignore_wrt_candidates
        self.match_low_quality = match_low_quality
        self.gpu_assign_thr = gpu_assign_thr

    def assign(
        self,
        bboxes: Tensor,
        gt_bboxes: Tensor,
        gt_labels: Tensor | None = None,
        gt_bboxes_ignore: Tensor | None = None,
    ) -> AssignResult:
        """Match each of `bboxes` (N, 4) to one `gt_bboxes` row, to background, or ignore it."""
        device = bboxes.device
        on_cpu = self.gpu_assign_thr > 0 and gt_bboxes.shape[0] > self.gpu_assign_thr
        if on_cpu:  # many GTs: the (G, N) IoU matrix may not fit in GPU memory
            bboxes, gt_bboxes = bboxes.cpu(), gt_bboxes.cpu()
            gt_labels = None if gt_labels is None else gt_labels.cpu()
            gt_bboxes_ignore = None if gt_bboxes_ignore is None else gt_bboxes_ignore.cpu()
        overlaps = bbox_overlaps(gt_bboxes.float(), bboxes.float())
        if (
            self.ignore_iof_thr > 0
            and gt_bboxes_ignore is not None
            and gt_bboxes_ignore.numel() > 0
            and bboxes.numel() > 0
        ):
            if self.ignore_wrt_candidates:
                iof = bbox_overlaps(bboxes.float(), gt_bboxes_ignore.float(), mode="iof").amax(
                    dim=1
                )
            else:
                iof = bbox_overlaps(gt_bboxes_ignore.float(), bboxes.float(), mode="iof").amax(
                    dim=0
                )
            overlaps[:, iof > self.ignore_iof_thr] = -1
        result = self._assign(overlaps, gt_labels)
        if on_cpu:
            result.gt_inds = result.gt_inds.to(device)
            result.max_overlaps = result.max_overlaps.to(device)
            result.labels = result.labels.to(device)
        return result

    def _assign(self, overlaps: Tensor, gt_labels: Tensor | None) -> AssignResult:
        num_gts, num_boxes = overlaps.shape
        gt_inds = overlaps.new_full((num_boxes,), -1, dtype=torch.long)
        labels = overlaps.new_full((num_boxes,), -1, dtype=torch.long)
        if num_gts == 0 or num_boxes == 0:
            if num_gts == 0:
                gt_inds.zero_()  # nothing to find: every candidate is background
            return AssignResult(num_gts, gt_inds, overlaps.new_zeros((num_boxes,)), labels)
        max_overlaps, argmax = overlaps.max(dim=0)
        gt_max, _ = overlaps.max(dim=1)
        if isinstance(self.neg_iou_thr, int | float):
            negative = (max_overlaps >= 0) & (max_overlaps < self.neg_iou_thr)
        else:
            negative = (max_overlaps >= self.neg_iou_thr[0]) & (max_overlaps < self.neg_iou_thr[1])
        # torch.where, not boolean-mask assignment: a mask index is a nonzero (a host wait).
        gt_inds = torch.where(negative, 0, gt_inds)
        positive = max_overlaps >= self.pos_iou_thr
        gt_inds = torch.where(positive, argmax + 1, gt_inds)
        if self.match_low_quality:
            # Every GT gets its best candidates even below pos_iou_thr; a later GT wins a tie,
            # as in the sequential reference implementation.
            ok = gt_max >= self.min_pos_iou
            gt_ids = torch.arange(1, num_gts + 1, device=overlaps.device)
            if self.gt_max_assign_all:
                best = (overlaps == gt_max[:, None]) & ok[:, None]
                winner = torch.where(best, gt_ids[:, None], 0).amax(dim=0)
            else:
                winner = torch.zeros_like(gt_inds)
                best_box = overlaps.argmax(dim=1)
                winner.scatter_reduce_(0, best_box[ok], gt_ids[ok], reduce="amax")
            gt_inds = torch.where(winner > 0, winner, gt_inds)
        if gt_labels is not None:
            matched = gt_labels[(gt_inds - 1).clamp(min=0)]
            labels = torch.where(gt_inds > 0, matched, labels)
        return AssignResult(num_gts, gt_inds, max_overlaps, labels)

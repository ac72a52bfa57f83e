"""MaxIoUAssigner: label each candidate box positive / negative / ignored by its IoU with the GT."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from detcli.errors import ModelError
from detcli.models.task_modules.assign_result import AssignResult, BatchAssignResult
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
        num_gts = gt_bboxes.shape[0]
        one = self.assign_batch(
            bboxes[None, :, :4],
            None,
            gt_bboxes[None],
            None,
            None if gt_labels is None else gt_labels[None],
            None if gt_bboxes_ignore is None else gt_bboxes_ignore[None],
            None,
        )
        return AssignResult(num_gts, one.gt_inds[0], one.max_overlaps[0], one.labels[0])

    def assign_batch(
        self,
        bboxes: Tensor,
        valid: Tensor | None,
        gt_bboxes: Tensor,
        gt_valid: Tensor | None,
        gt_labels: Tensor | None = None,
        gt_bboxes_ignore: Tensor | None = None,
        ignore_valid: Tensor | None = None,
    ) -> BatchAssignResult:
        """`assign` for a padded batch: candidates (B, N, 4), GT (B, G, 4), ignore (B, I, 4).

        The `valid` masks (B, N) / (B, G) / (B, I) mark real rows (None: all); a candidate
        that is not valid is ignored (-1) and is nobody's best match.
        """
        device = bboxes.device
        on_cpu = self.gpu_assign_thr > 0 and gt_bboxes.shape[1] > self.gpu_assign_thr
        if on_cpu:  # many GTs: the (G, N) IoU matrix may not fit in GPU memory
            bboxes, gt_bboxes = bboxes.cpu(), gt_bboxes.cpu()
            valid, gt_valid, gt_labels, gt_bboxes_ignore, ignore_valid = (
                None if t is None else t.cpu()
                for t in (valid, gt_valid, gt_labels, gt_bboxes_ignore, ignore_valid)
            )
        overlaps = bbox_overlaps(gt_bboxes.float(), bboxes.float())  # (B, G, N)
        # Padding rows and columns score -1: below every threshold and every real IoU.
        real = None
        if gt_valid is not None:
            real = gt_valid[:, :, None]
        if valid is not None:
            real = valid[:, None, :] if real is None else real & valid[:, None, :]
        if real is not None:
            overlaps = torch.where(real, overlaps, -1.0)
        if (
            self.ignore_iof_thr > 0
            and gt_bboxes_ignore is not None
            and gt_bboxes_ignore.numel() > 0
            and bboxes.numel() > 0
        ):
            if self.ignore_wrt_candidates:
                iof = bbox_overlaps(bboxes.float(), gt_bboxes_ignore.float(), mode="iof")
                if ignore_valid is not None:
                    iof = torch.where(ignore_valid[:, None, :], iof, 0.0)
                iof = iof.amax(dim=2)
            else:
                iof = bbox_overlaps(gt_bboxes_ignore.float(), bboxes.float(), mode="iof")
                if ignore_valid is not None:
                    iof = torch.where(ignore_valid[:, :, None], iof, 0.0)
                iof = iof.amax(dim=1)
            overlaps = torch.where((iof > self.ignore_iof_thr)[:, None, :], -1.0, overlaps)
        result = self._assign(overlaps, gt_valid, gt_labels)
        if valid is not None:
            result.gt_inds = torch.where(valid, result.gt_inds, -1)
        if on_cpu:
            result.gt_inds = result.gt_inds.to(device)
            result.max_overlaps = result.max_overlaps.to(device)
            result.labels = result.labels.to(device)
        return result

    def _assign(
        self, overlaps: Tensor, gt_valid: Tensor | None, gt_labels: Tensor | None
    ) -> BatchAssignResult:
        num_imgs, num_gts, num_boxes = overlaps.shape
        gt_inds = overlaps.new_full((num_imgs, num_boxes), -1, dtype=torch.long)
        labels = overlaps.new_full((num_imgs, num_boxes), -1, dtype=torch.long)
        if num_gts == 0 or num_boxes == 0:
            if num_gts == 0:
                gt_inds.zero_()  # nothing to find: every candidate is background
            return BatchAssignResult(gt_inds, overlaps.new_zeros((num_imgs, num_boxes)), labels)
        max_overlaps, argmax = overlaps.max(dim=1)
        gt_max, _ = overlaps.max(dim=2)
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
            if gt_valid is not None:
                ok = ok & gt_valid
            gt_ids = torch.arange(1, num_gts + 1, device=overlaps.device)
            if self.gt_max_assign_all:
                best = (overlaps == gt_max[:, :, None]) & ok[:, :, None]
                winner = torch.where(best, gt_ids[:, None], 0).amax(dim=1)
            else:
                winner = torch.zeros_like(gt_inds).scatter_reduce_(
                    1, overlaps.argmax(dim=2), torch.where(ok, gt_ids, 0), reduce="amax"
                )
            gt_inds = torch.where(winner > 0, winner, gt_inds)
        if gt_valid is not None:  # an image without GT: every candidate is background
            gt_inds = torch.where(gt_valid.any(1, keepdim=True), gt_inds, 0)
        if gt_labels is not None:
            matched = gt_labels.gather(1, (gt_inds - 1).clamp(min=0))
            labels = torch.where(gt_inds > 0, matched, labels)
        return BatchAssignResult(gt_inds, max_overlaps, labels)

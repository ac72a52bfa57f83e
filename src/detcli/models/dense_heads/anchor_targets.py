"""Training targets for anchors: assign every anchor of every image, sample, encode; batched."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from detcli.models.run_cfgs import StageTrainCfg
from detcli.models.task_modules.padding import pad_boxes, pad_labels


@dataclass
class AnchorTargets:
    """The sampled anchors of each image in S fixed slots, positives first, with their targets.

    Fixed slots (see `BatchSample`) keep every size known on the host: selecting them is a
    gather, never a boolean mask (a host wait on a GPU).
    """

    inds: Tensor  # int64 (B, S): the anchor in each slot
    labels: Tensor  # int64 (B, S): 0..C-1 for a positive, C (background) otherwise
    label_weights: Tensor  # float (B, S): pos_weight or 1 where sampled, 0 in unused slots
    pos_inds: Tensor  # int64 (B, P): the anchors of the first P slots, where positives are
    bbox_targets: Tensor  # float (B, P, 4): encoded deltas (or GT boxes); 0 off positives
    bbox_weights: Tensor  # float (B, P): 1 where the slot holds a positive
    num_samples: Tensor  # positives + negatives over the batch (the loss normaliser)


def anchor_targets(
    anchors: Tensor,
    valid: Tensor,
    img_hw: Tensor,
    gt_bboxes: Sequence[Tensor],
    gt_labels: Sequence[Tensor] | None,
    gt_bboxes_ignore: Sequence[Tensor] | None,
    cfg: StageTrainCfg,
    num_classes: int,
    encode: bool,
    coder: Any,
) -> AnchorTargets:
    """Targets for anchors (N, 4) shared by the batch; `valid` (B, N) marks usable anchors."""
    num_imgs = valid.shape[0]
    inside = valid
    if cfg.allowed_border >= 0:
        b = cfg.allowed_border
        h, w = img_hw[:, 0:1], img_hw[:, 1:2]
        inside = (
            valid
            & (anchors[None, :, 0] >= -b)
            & (anchors[None, :, 1] >= -b)
            & (anchors[None, :, 2] < w + b)
            & (anchors[None, :, 3] < h + b)
        )
    gt, gt_valid = pad_boxes(gt_bboxes)
    ignore, ignore_valid = (None, None) if gt_bboxes_ignore is None else pad_boxes(gt_bboxes_ignore)
    assigned = cfg.assigner.assign_batch(
        anchors.expand(num_imgs, -1, -1),
        inside,
        gt,
        gt_valid,
        None if gt_labels is None else pad_labels(gt_labels),
        ignore,
        ignore_valid,
    )
    s = cfg.sampler.sample_batch(assigned.gt_inds)
    pos_label = 0 if gt_labels is None else assigned.labels.gather(1, s.inds)
    labels = torch.where(s.is_pos, pos_label, num_classes)
    pos_weight = 1.0 if cfg.pos_weight <= 0 else float(cfg.pos_weight)
    label_weights = torch.where(s.valid, torch.where(s.is_pos, pos_weight, 1.0), 0.0)
    # Positives are a leading run of the slots, so the first P slots hold all of them.
    pos_inds = s.inds[:, : s.num_pos_slots]
    is_pos = s.is_pos[:, : s.num_pos_slots]
    if gt.shape[1] == 0:  # no GT in the batch: no positives
        bbox_targets = anchors.new_zeros((*pos_inds.shape, 4))
    else:
        matched = (assigned.gt_inds.gather(1, pos_inds) - 1).clamp(min=0)
        target = gt.gather(1, matched[..., None].expand(-1, -1, 4))
        if encode:
            target = coder.encode(anchors[pos_inds], target)
        # Off positives the target may be a padding box (log 0 when encoded): zero it.
        bbox_targets = torch.where(is_pos[..., None], target, 0.0)
    return AnchorTargets(
        s.inds,
        labels,
        label_weights,
        pos_inds,
        bbox_targets,
        is_pos.float(),
        s.num_samples,
    )

"""Training targets for anchors: assign every anchor of every image, sample, encode."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from detcli.models.run_cfgs import StageTrainCfg


@dataclass
class AnchorTargets:
    """Per image and anchor (B, N): class label, its weight, box target and positive mask."""

    labels: Tensor  # int64 (B, N): 0..C-1 positive class, C background
    label_weights: Tensor  # float (B, N): 0 for anchors not sampled
    bbox_targets: Tensor  # float (B, N, 4): encoded deltas (or GT boxes) for positives
    pos_mask: Tensor  # bool (B, N)
    num_samples: int  # positives + negatives over the batch (the loss normaliser)
    # Ascending indices into the flattened (B * N) anchors: the mask's order, but known
    # without the host wait that selecting by a boolean mask costs on a GPU.
    pos_inds: Tensor
    sampled_inds: Tensor


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
    num_imgs, num_anchors = valid.shape
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
    labels = torch.full(
        (num_imgs, num_anchors), num_classes, dtype=torch.long, device=anchors.device
    )
    label_weights = anchors.new_zeros((num_imgs, num_anchors))
    bbox_targets = anchors.new_zeros((num_imgs, num_anchors, 4))
    pos_mask = torch.zeros((num_imgs, num_anchors), dtype=torch.bool, device=anchors.device)
    num_samples = 0
    flat_pos, flat_sampled = [], []
    pos_weight = 1.0 if cfg.pos_weight <= 0 else float(cfg.pos_weight)
    for i in range(num_imgs):  # per image: each has its own GT set; the work inside is vectorised
        idx = torch.nonzero(inside[i]).flatten()
        cand = anchors[idx]
        ignore = None if gt_bboxes_ignore is None else gt_bboxes_ignore[i]
        img_labels = None if gt_labels is None else gt_labels[i]
        assigned = cfg.assigner.assign(cand, gt_bboxes[i], img_labels, ignore)
        sampled = cfg.sampler.sample(assigned, cand, gt_bboxes[i], img_labels)
        pos = idx[sampled.pos_inds]
        neg = idx[sampled.neg_inds]
        labels[i, pos] = 0 if gt_labels is None else sampled.pos_gt_labels
        label_weights[i, pos] = pos_weight
        label_weights[i, neg] = 1.0
        pos_mask[i, pos] = True
        if pos.numel():
            target = sampled.pos_gt_bboxes
            bbox_targets[i, pos] = coder.encode(anchors[pos], target) if encode else target
        num_samples += int(pos.numel() + neg.numel())
        flat_pos.append(pos + i * num_anchors)
        flat_sampled += [flat_pos[-1], neg + i * num_anchors]
    pos_inds = torch.cat(flat_pos).sort().values
    sampled_inds = torch.cat(flat_sampled).sort().values
    return AnchorTargets(
        labels, label_weights, bbox_targets, pos_mask, num_samples, pos_inds, sampled_inds
    )

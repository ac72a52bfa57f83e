"""Shared2FCBBoxHead: two shared FC layers, then class scores and per-class box deltas per RoI."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from detcli.errors import ModelError
from detcli.models.run_cfgs import StageTrainCfg
from detcli.models.task_modules.assign_result import SamplingResult
from detcli.registry import MODELS, ModelCfg

DEFAULT_CODER = {"type": "DeltaXYWHBBoxCoder", "target_stds": [0.1, 0.1, 0.2, 0.2]}
DEFAULT_LOSS_CLS = {"type": "CrossEntropyLoss", "use_sigmoid": False, "loss_weight": 1.0}
DEFAULT_LOSS_BBOX = {"type": "L1Loss", "loss_weight": 1.0}


@dataclass
class RoITargets:
    """Per sampled RoI of the batch: label (num_classes = background), its weight, box target."""

    labels: Tensor
    label_weights: Tensor
    bbox_targets: Tensor
    pos_inds: Tensor  # int64: the rows of the positives, ascending (known without a host wait)


@MODELS.register()
class Shared2FCBBoxHead(nn.Module):
    """mmdet's Shared2FCBBoxHead: flatten RoI features -> fc -> ReLU -> fc -> ReLU -> cls / reg."""

    def __init__(
        self,
        num_classes: int,
        in_channels: int = 256,
        fc_out_channels: int = 1024,
        roi_feat_size: int = 7,
        bbox_coder: ModelCfg | None = None,
        reg_class_agnostic: bool = False,
        reg_decoded_bbox: bool = False,
        loss_cls: ModelCfg | None = None,
        loss_bbox: ModelCfg | None = None,
        init_cfg: dict[str, Any] | None = None,
    ):
        super().__init__()
        if num_classes < 1:
            raise ModelError(
                f"Shared2FCBBoxHead: num_classes must be at least 1, got {num_classes}."
            )
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.roi_feat_size = roi_feat_size
        self.reg_class_agnostic = reg_class_agnostic
        self.reg_decoded_bbox = reg_decoded_bbox
        self.bbox_coder = MODELS.build(bbox_coder or DEFAULT_CODER)
        self.loss_cls = MODELS.build(loss_cls or DEFAULT_LOSS_CLS)
        self.loss_bbox = MODELS.build(loss_bbox or DEFAULT_LOSS_BBOX)
        if getattr(self.loss_bbox, "needs_decoded_boxes", False) and not reg_decoded_bbox:
            raise ModelError(
                f"Shared2FCBBoxHead: {type(self.loss_bbox).__name__} compares boxes, so set "
                "bbox_head.reg_decoded_bbox: true."
            )
        self.use_sigmoid = bool(getattr(self.loss_cls, "use_sigmoid", False))
        cls_out = num_classes if self.use_sigmoid else num_classes + 1
        self.shared_fcs = nn.ModuleList(
            [
                nn.Linear(in_channels * roi_feat_size * roi_feat_size, fc_out_channels),
                nn.Linear(fc_out_channels, fc_out_channels),
            ]
        )
        self.relu = nn.ReLU(inplace=True)
        self.fc_cls = nn.Linear(fc_out_channels, cls_out)
        self.fc_reg = nn.Linear(fc_out_channels, 4 if reg_class_agnostic else 4 * num_classes)
        for fc in self.shared_fcs:
            nn.init.xavier_uniform_(fc.weight)
            nn.init.zeros_(fc.bias)
        nn.init.normal_(self.fc_cls.weight, std=0.01)
        nn.init.normal_(self.fc_reg.weight, std=0.001)
        nn.init.zeros_(self.fc_cls.bias)
        nn.init.zeros_(self.fc_reg.bias)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Class logits (K, C + 1) (sigmoid: C) and deltas (K, 4 * C) (agnostic: 4)."""
        if x.shape[1:] != (self.in_channels, self.roi_feat_size, self.roi_feat_size):
            raise ModelError(
                "Shared2FCBBoxHead expects RoI features "
                f"({self.in_channels}, {self.roi_feat_size}, {self.roi_feat_size}) but gets "
                f"{tuple(x.shape[1:])}; match in_channels to the "
                "extractor's out_channels and roi_feat_size to roi_layer.output_size."
            )
        x = x.flatten(1)
        for fc in self.shared_fcs:
            x = self.relu(fc(x))
        return self.fc_cls(x), self.fc_reg(x)

    def get_targets(self, samples: Sequence[SamplingResult], cfg: StageTrainCfg) -> RoITargets:
        """Targets in RoI order: per image its positives, then its negatives."""
        pos_weight = 1.0 if cfg.pos_weight <= 0 else float(cfg.pos_weight)
        labels, weights, targets, pos_rows = [], [], [], []
        start = 0
        for s in samples:
            num_pos, num_neg = s.pos_inds.numel(), s.neg_inds.numel()
            pos_rows.append(torch.arange(start, start + num_pos, device=s.bboxes.device))
            start += num_pos + num_neg
            labels.append(
                torch.cat([s.pos_gt_labels, s.pos_gt_labels.new_full((num_neg,), self.num_classes)])
            )
            weights.append(
                torch.cat(
                    [s.bboxes.new_full((num_pos,), pos_weight), s.bboxes.new_ones((num_neg,))]
                )
            )
            pos_target = (
                s.pos_gt_bboxes
                if self.reg_decoded_bbox
                else self.bbox_coder.encode(s.pos_bboxes, s.pos_gt_bboxes)
            )
            targets.append(
                torch.cat([pos_target.float(), s.bboxes.new_zeros((num_neg, 4)).float()])
            )
        return RoITargets(
            torch.cat(labels), torch.cat(weights), torch.cat(targets), torch.cat(pos_rows)
        )

    def loss(
        self, cls_score: Tensor, bbox_pred: Tensor, rois: Tensor, t: RoITargets
    ) -> dict[str, Tensor]:
        """`loss_cls`, `loss_bbox` and `acc` (classification accuracy in percent, logged only)."""
        num = cls_score.shape[0]
        avg = (t.label_weights > 0).sum().clamp(min=1).float()  # a tensor: no device sync
        loss_cls = self.loss_cls(cls_score, t.labels, t.label_weights, avg_factor=avg)
        # Index by the known positive rows: a `labels < num_classes` mask costs a host wait.
        pos = t.pos_inds
        if self.reg_class_agnostic:
            pred = bbox_pred.reshape(num, 4)[pos]
        else:
            pred = bbox_pred.reshape(num, -1, 4)[pos, t.labels[pos]]
        if self.reg_decoded_bbox:
            pred = self.bbox_coder.decode(rois[pos, 1:], pred)
        loss_bbox = self.loss_bbox(pred, t.bbox_targets[pos], avg_factor=max(num, 1))
        return {
            "loss_cls": loss_cls,
            "loss_bbox": loss_bbox,
            "acc": self._accuracy(cls_score, t.labels),
        }

    @torch.no_grad()
    def _accuracy(self, cls_score: Tensor, labels: Tensor) -> Tensor:
        if labels.numel() == 0:
            return cls_score.new_tensor(0.0)
        if self.use_sigmoid:
            prob = cls_score.float().sigmoid()
            best, pred = prob.max(dim=1)
            pred = torch.where(best > 0.5, pred, self.num_classes)
        else:
            pred = cls_score.argmax(dim=1)
        return (pred == labels).float().mean() * 100.0

    def predict_boxes(
        self, rois: Tensor, cls_score: Tensor, bbox_pred: Tensor, max_hw: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Boxes (K, C, 4) (agnostic: (K, 1, 4)) clipped to `max_hw` (K, 2); scores (K, C)."""
        if self.use_sigmoid:
            scores = cls_score.float().sigmoid()
        else:
            scores = cls_score.float().softmax(-1)[:, : self.num_classes]
        boxes = self.bbox_coder.decode(rois[:, 1:], bbox_pred, max_shape=max_hw)
        per_box = 1 if self.reg_class_agnostic else self.num_classes
        return boxes.reshape(rois.shape[0], per_box, 4), scores

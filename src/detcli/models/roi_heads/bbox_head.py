"""Shared2FCBBoxHead: two shared FC layers, then class scores and per-class box deltas per RoI."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from detcli.errors import ModelError
from detcli.models.losses import CrossEntropyLoss, L1Loss
from detcli.models.run_cfgs import StageTrainCfg
from detcli.models.shapes import UNWIRED, RoIFeatures, Wiring
from detcli.models.task_modules.bbox_coder import DeltaXYWHBBoxCoder
from detcli.models.task_modules.random_sampler import BatchSample
from detcli.registry import MODELS, Model


@dataclass
class RoITargets:
    """Targets of the sampled RoIs, B images x S slots (see `BatchSample`), positives first."""

    labels: Tensor  # int64 (B * S,): the class of a positive, num_classes otherwise
    label_weights: Tensor  # float (B * S,): pos_weight or 1 where sampled, 0 in unused slots
    bbox_targets: Tensor  # float (B, P, 4): of the first P slots, where positives are
    bbox_weights: Tensor  # float (B, P): 1 where the slot holds a positive


@MODELS.register()
class Shared2FCBBoxHead(nn.Module):
    """mmdet's Shared2FCBBoxHead: flatten RoI features -> fc -> ReLU -> fc -> ReLU -> cls / reg."""

    def __init__(
        self,
        num_classes: int,
        in_channels: int | None = None,
        fc_out_channels: int = 1024,
        roi_feat_size: int | None = None,
        bbox_coder: Model[DeltaXYWHBBoxCoder] | None = None,
        reg_class_agnostic: bool = False,
        reg_decoded_bbox: bool = False,
        loss_cls: Model[nn.Module] | None = None,
        loss_bbox: Model[nn.Module] | None = None,
        init_cfg: dict[str, Any] | list[dict[str, Any]] | None = None,
    ):
        super().__init__()
        if num_classes < 1:
            raise ModelError(
                f"Shared2FCBBoxHead: num_classes must be at least 1, got {num_classes}."
            )
        self.num_classes = num_classes
        self.fc_out_channels = fc_out_channels
        self.reg_class_agnostic = reg_class_agnostic
        self.reg_decoded_bbox = reg_decoded_bbox
        self.bbox_coder = bbox_coder or DeltaXYWHBBoxCoder(target_stds=(0.1, 0.1, 0.2, 0.2))
        self.loss_cls = loss_cls or CrossEntropyLoss()
        self.loss_bbox = loss_bbox or L1Loss()
        if getattr(self.loss_bbox, "needs_decoded_boxes", False) and not reg_decoded_bbox:
            raise ModelError(
                f"Shared2FCBBoxHead: {type(self.loss_bbox).__name__} compares boxes, so set "
                "bbox_head.reg_decoded_bbox: true."
            )
        self.use_sigmoid = bool(getattr(self.loss_cls, "use_sigmoid", False))
        self.init_cfg = init_cfg
        self.in_channels: int | None = None
        self.roi_feat_size: int | None = None
        if in_channels is not None and roi_feat_size is not None:
            self._build(in_channels, roi_feat_size)
        else:  # one known, the other taken from the RoI extractor by `wire`
            self.in_channels, self.roi_feat_size = in_channels, roi_feat_size
            self._built = False

    def wire(self, rois: RoIFeatures, wiring: Wiring) -> None:
        """Take `in_channels` and `roi_feat_size` from the RoI extractor (or check them)."""
        in_channels = wiring.agree(
            "in_channels",
            self.in_channels,
            rois.channels,
            f"{rois.source} gives {rois.channels} channels",
        )
        size = rois.size[0] if rois.size[0] == rois.size[1] else None
        if size is None or (self.roi_feat_size is not None and self.roi_feat_size != size):
            wiring.report(
                "roi_feat_size",
                f"roi_feat_size is {self.roi_feat_size}, but roi_layer.output_size pools "
                f"{list(rois.size)}.",
            )
        roi_feat_size = self.roi_feat_size or size or rois.size[0]
        if not self._built:
            self._build(in_channels, roi_feat_size)

    def _build(self, in_channels: int, roi_feat_size: int) -> None:
        self.in_channels = in_channels
        self.roi_feat_size = roi_feat_size
        self._built = True
        fc_out = self.fc_out_channels
        cls_out = self.num_classes if self.use_sigmoid else self.num_classes + 1
        shared_fcs = [
            nn.Linear(in_channels * roi_feat_size * roi_feat_size, fc_out),
            nn.Linear(fc_out, fc_out),
        ]
        self.shared_fcs = nn.ModuleList(shared_fcs)
        self.relu = nn.ReLU(inplace=True)
        self.fc_cls = nn.Linear(fc_out, cls_out)
        self.fc_reg = nn.Linear(fc_out, 4 if self.reg_class_agnostic else 4 * self.num_classes)
        for fc in shared_fcs:
            nn.init.xavier_uniform_(fc.weight)
            nn.init.zeros_(fc.bias)
        nn.init.normal_(self.fc_cls.weight, std=0.01)
        nn.init.normal_(self.fc_reg.weight, std=0.001)
        nn.init.zeros_(self.fc_cls.bias)
        nn.init.zeros_(self.fc_reg.bias)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Class logits (K, C + 1) (sigmoid: C) and deltas (K, 4 * C) (agnostic: 4)."""
        if not self._built:
            raise ModelError(UNWIRED.format(part="Shared2FCBBoxHead"))
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

    def get_targets(
        self,
        boxes: Tensor,
        gt_bboxes: Tensor,
        gt_inds: Tensor,
        gt_labels: Tensor,
        s: BatchSample,
        cfg: StageTrainCfg,
    ) -> RoITargets:
        """Targets of the RoIs `boxes` (B, S, 4) in sample slots `s`.

        `gt_bboxes` (B, G, 4) is the padded GT; `gt_inds` / `gt_labels` (B, S) are each
        slot's assignment (GT index + 1, its label).
        """
        pos_weight = 1.0 if cfg.pos_weight <= 0 else float(cfg.pos_weight)
        labels = torch.where(s.is_pos, gt_labels, self.num_classes)
        weights = torch.where(s.valid, torch.where(s.is_pos, pos_weight, 1.0), 0.0)
        num_pos = s.num_pos_slots  # positives are a leading run of the slots
        is_pos = s.is_pos[:, :num_pos, None]
        if gt_bboxes.shape[1] == 0:
            return RoITargets(
                labels.flatten(),
                weights.flatten(),
                boxes.new_zeros((boxes.shape[0], num_pos, 4)),
                is_pos[..., 0].float(),
            )
        matched = (gt_inds[:, :num_pos] - 1).clamp(min=0)
        target = gt_bboxes.gather(1, matched[..., None].expand(-1, -1, 4))
        if not self.reg_decoded_bbox:
            target = self.bbox_coder.encode(boxes[:, :num_pos], target)
        # Off positives the target may be a padding box (log 0 when encoded): zero it.
        target = torch.where(is_pos, target, 0.0)
        return RoITargets(labels.flatten(), weights.flatten(), target, is_pos[..., 0].float())

    def loss(
        self, cls_score: Tensor, bbox_pred: Tensor, rois: Tensor, t: RoITargets
    ) -> dict[str, Tensor]:
        """`loss_cls`, `loss_bbox` and `acc` (classification accuracy in percent, logged only)."""
        num_imgs, num_pos = t.bbox_weights.shape
        num_slots = cls_score.shape[0] // max(num_imgs, 1)
        avg = (t.label_weights > 0).sum().clamp(min=1).float()  # a tensor: no device sync
        loss_cls = self.loss_cls(cls_score, t.labels, t.label_weights, avg_factor=avg)
        # The first P slots of each image hold its positives: slices and a gather, no mask.
        if self.reg_class_agnostic:
            pred = bbox_pred.reshape(num_imgs, num_slots, 4)[:, :num_pos]
        else:
            pred = bbox_pred.reshape(num_imgs, num_slots, -1, 4)[:, :num_pos]
            cls = t.labels.reshape(num_imgs, num_slots)[:, :num_pos].clamp(max=self.num_classes - 1)
            pred = pred.gather(2, cls[..., None, None].expand(-1, -1, 1, 4)).squeeze(2)
        if self.reg_decoded_bbox:
            pred = self.bbox_coder.decode(
                rois.reshape(num_imgs, num_slots, 5)[:, :num_pos, 1:], pred
            )
        loss_bbox = self.loss_bbox(
            pred.flatten(0, 1),
            t.bbox_targets.flatten(0, 1),
            t.bbox_weights.reshape(-1, 1),
            avg_factor=avg,  # the sampled RoIs, as mmdet's bbox_targets.size(0)
        )
        return {
            "loss_cls": loss_cls,
            "loss_bbox": loss_bbox,
            "acc": self._accuracy(cls_score, t.labels, t.label_weights > 0, avg),
        }

    @torch.no_grad()
    def _accuracy(self, cls_score: Tensor, labels: Tensor, sampled: Tensor, num: Tensor) -> Tensor:
        if labels.numel() == 0:
            return cls_score.new_zeros(())
        if self.use_sigmoid:
            prob = cls_score.float().sigmoid()
            best, pred = prob.max(dim=1)
            pred = torch.where(best > 0.5, pred, self.num_classes)
        else:
            pred = cls_score.argmax(dim=1)
        return ((pred == labels) & sampled).sum() / num * 100.0

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

    def regress(
        self, boxes: Tensor, labels: Tensor, bbox_pred: Tensor, max_hw: Tensor | None
    ) -> Tensor:
        """`boxes` (K, 4) moved by their `labels`' deltas (agnostic: the one set), clipped to
        `max_hw` (K, 2): how a cascade stage refines the RoIs of the next (mmdet's
        `regress_by_class`)."""
        if not self.reg_class_agnostic:
            per_class = bbox_pred.reshape(bbox_pred.shape[0], -1, 4)
            bbox_pred = per_class.gather(1, labels[:, None, None].expand(-1, 1, 4)).squeeze(1)
        refined: Tensor = self.bbox_coder.decode(boxes, bbox_pred, max_shape=max_hw)
        return refined

"""CascadeRoIHead: box heads in sequence, each trained on the RoIs the one before refined.

Cascade R-CNN (Cai & Vasconcelos, 2018) as MMDetection builds it: stage i samples its RoIs
with its own assigner (rising IoU thresholds), its losses are weighted by
`stage_loss_weights[i]` and named `s{i}.loss_cls`, ...; the boxes it regresses become the next
stage's proposals (without the GT boxes added as proposals). At test time every stage scores
the RoIs of the last, their class scores are averaged over stages, and the last stage's boxes
are the detections. Cascade Mask R-CNN adds a mask head per stage, trained on that stage's
positives (`s{i}.loss_mask`); the detections' masks average every stage's probabilities.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, cast

import torch
from torch import Tensor, nn

from detcli.errors import ModelError
from detcli.models.roi_heads.bbox_head import Shared2FCBBoxHead
from detcli.models.roi_heads.fcn_mask_head import FCNMaskHead
from detcli.models.roi_heads.mask_branch import MaskBranch, mask_loss, predict_masks
from detcli.models.roi_heads.roi_extractor import SingleRoIExtractor, rois_from
from detcli.models.roi_heads.standard_roi_head import (
    GroundTruth,
    SampledRoIs,
    check_mask_head,
    check_mask_size,
    check_mask_test_cfg,
    detections,
    sample_rois,
)
from detcli.models.run_cfgs import RCNNTestCfg, StageTrainCfg
from detcli.models.shapes import FeatureMaps, Wiring
from detcli.models.task_modules.padding import pad_boxes
from detcli.registry import MODELS, Model
from detcli.structures import Detections, ImgMeta, InstanceMasks


@MODELS.register()
class CascadeRoIHead(nn.Module):
    """mmdet's CascadeRoIHead (boxes): `num_stages` box heads, one `train_cfg.rcnn` per stage.

    `bbox_roi_extractor` is one extractor shared by every stage (it has no weights), or one per
    stage; `bbox_head` is one head per stage (mmdet's configs regress class-agnostically, with
    finer `target_stds` at each stage). `mask_roi_extractor` likewise; `mask_head` is one per
    stage, or one config that every stage gets a freshly initialised copy of (as mmdet).
    """

    def __init__(
        self,
        num_stages: int,
        stage_loss_weights: Sequence[float],
        bbox_roi_extractor: Model[SingleRoIExtractor] | list[Model[SingleRoIExtractor]],
        bbox_head: list[Model[Shared2FCBBoxHead]],
        mask_roi_extractor: Model[SingleRoIExtractor]
        | list[Model[SingleRoIExtractor]]
        | None = None,
        mask_head: Model[FCNMaskHead] | list[Model[FCNMaskHead]] | None = None,
        train_cfg: Sequence[StageTrainCfg] | None = None,
        test_cfg: RCNNTestCfg | None = None,
        init_cfg: dict[str, Any] | list[dict[str, Any]] | None = None,
    ):
        super().__init__()
        where = "model.roi_head"
        _per_stage(num_stages, stage_loss_weights, f"{where}.stage_loss_weights")
        _per_stage(num_stages, bbox_head, f"{where}.bbox_head")
        if isinstance(bbox_roi_extractor, list):
            extractors = bbox_roi_extractor
            _per_stage(num_stages, extractors, f"{where}.bbox_roi_extractor")
        else:
            extractors = [bbox_roi_extractor] * num_stages  # one shared (it has no weights)
        if train_cfg is not None:
            _per_stage(num_stages, train_cfg, "model.train_cfg.rcnn")
        classes = [head.num_classes for head in bbox_head]
        if len(set(classes)) > 1:
            raise ModelError(
                f"{where}.bbox_head: the stages' num_classes differ ({classes}); every stage "
                "classifies the same classes."
            )
        self.num_stages = num_stages
        self.stage_loss_weights = [float(w) for w in stage_loss_weights]
        self.bbox_roi_extractor = nn.ModuleList(extractors)
        self.bbox_head = nn.ModuleList(bbox_head)
        self.mask_roi_extractor: nn.ModuleList | None = None
        self.mask_head: nn.ModuleList | None = None
        if mask_head is not None or mask_roi_extractor is not None:
            self.mask_roi_extractor, self.mask_head = _mask_stages(
                num_stages, mask_roi_extractor, mask_head, classes[0]
            )
        self.train_cfg = list(train_cfg) if train_cfg is not None else None
        self.test_cfg = test_cfg or RCNNTestCfg()
        check_mask_test_cfg(self.test_cfg)
        self.init_cfg = init_cfg

    @property
    def num_classes(self) -> int:
        """The number of object classes the box heads score."""
        return self.head(-1).num_classes

    def head(self, stage: int) -> Shared2FCBBoxHead:
        """The box head of `stage`."""
        return cast(Shared2FCBBoxHead, self.bbox_head[stage])

    def extractor(self, stage: int) -> SingleRoIExtractor:
        """The RoI extractor of `stage` (the same one for every stage when shared)."""
        return cast(SingleRoIExtractor, self.bbox_roi_extractor[stage])

    @property
    def with_mask(self) -> bool:
        """Whether it predicts masks (Cascade Mask R-CNN)."""
        return self.mask_head is not None

    def mask_branches(self) -> list[MaskBranch]:
        """Every stage's mask extractor and head (none without masks)."""
        return [self.mask_branch(i) for i in range(self.num_stages)] if self.with_mask else []

    def mask_branch(self, stage: int) -> MaskBranch:
        """The mask RoI extractor and mask head of `stage` (with masks only)."""
        assert self.mask_roi_extractor is not None and self.mask_head is not None
        return (
            cast(SingleRoIExtractor, self.mask_roi_extractor[stage]),
            cast(FCNMaskHead, self.mask_head[stage]),
        )

    def wire(self, inputs: FeatureMaps, wiring: Wiring) -> None:
        """Wire every stage's extractor from the maps it pools, and its box head from it."""
        wired: dict[int, Any] = {}  # a shared extractor is wired once
        shared = len({id(e) for e in self.bbox_roi_extractor}) == 1
        for stage in range(self.num_stages):
            extractor = self.extractor(stage)
            if id(extractor) not in wired:
                at = ("bbox_roi_extractor",) if shared else ("bbox_roi_extractor", stage)
                wired[id(extractor)] = extractor.wire(inputs, wiring.child(*at))
            self.head(stage).wire(wired[id(extractor)], wiring.child("bbox_head", stage))
        if self.mask_roi_extractor is None:
            return
        shared = len({id(e) for e in self.mask_roi_extractor}) == 1
        for stage in range(self.num_stages):
            extractor, mask_head = self.mask_branch(stage)
            if id(extractor) not in wired:
                at = ("mask_roi_extractor",) if shared else ("mask_roi_extractor", stage)
                wired[id(extractor)] = extractor.wire(inputs, wiring.child(*at))
            mask_head.wire(wired[id(extractor)], wiring.child("mask_head", stage))
            cfg = None if self.train_cfg is None else self.train_cfg[stage]
            check_mask_size(mask_head, cfg, wiring.child("mask_head", stage), f"rcnn.{stage}")

    def _bbox_forward(
        self, stage: int, feats: Sequence[Tensor], rois: Tensor
    ) -> tuple[Tensor, Tensor]:
        extractor = self.extractor(stage)
        scores_and_deltas: tuple[Tensor, Tensor] = self.head(stage)(
            extractor(feats[: extractor.num_inputs], rois)
        )
        return scores_and_deltas

    def loss(
        self,
        feats: Sequence[Tensor],
        proposals: Sequence[Tensor],
        gt_bboxes: Sequence[Tensor],
        gt_labels: Sequence[Tensor],
        gt_bboxes_ignore: Sequence[Tensor] | None = None,
        img_hw: Tensor | None = None,
        gt_masks: Sequence[InstanceMasks] | None = None,
    ) -> dict[str, Tensor]:
        """`s{i}.loss_cls`, `s{i}.loss_bbox` (weighted by stage) and `s{i}.acc` for each stage,
        and `s{i}.loss_mask` with mask heads (which need `gt_masks`)."""
        if self.train_cfg is None:
            raise ModelError(
                "CascadeRoIHead cannot train without model.train_cfg.rcnn (one assigner and "
                "sampler per stage)."
            )
        if self.with_mask and gt_masks is None:
            raise ModelError(
                "the mask heads train on gt_masks, and the batch has none: load them with "
                "LoadAnnotations(with_mask=True) and keep gt_masks in Collect's keys "
                "(PackDetInputs keeps them)."
            )
        gt = GroundTruth.pad(gt_bboxes, gt_labels, gt_bboxes_ignore)
        props, valid = pad_boxes(proposals)
        losses: dict[str, Tensor] = {}
        for stage, (cfg, weight) in enumerate(
            zip(self.train_cfg, self.stage_loss_weights, strict=True)
        ):
            head = self.head(stage)
            sampled = sample_rois(props, valid, gt, cfg)
            cls_score, bbox_pred = self._bbox_forward(stage, feats, sampled.rois)
            targets = head.get_targets(
                sampled.boxes, gt.boxes, sampled.gt_inds, sampled.labels, sampled.s, cfg
            )
            stage_losses = head.loss(cls_score, bbox_pred, sampled.rois, targets)
            if self.with_mask and gt_masks is not None:
                extractor, mask_head = self.mask_branch(stage)
                stage_losses.update(mask_loss(extractor, mask_head, feats, sampled, gt_masks, cfg))
            for name, value in stage_losses.items():
                losses[f"s{stage}.{name}"] = value * weight if "loss" in name else value
            if stage < self.num_stages - 1:
                props, valid = self._refine(
                    head, sampled, targets.labels, cls_score, bbox_pred, img_hw
                )
        return losses

    @torch.no_grad()
    def _refine(
        self,
        head: Shared2FCBBoxHead,
        sampled: SampledRoIs,
        labels: Tensor,
        cls_score: Tensor,
        bbox_pred: Tensor,
        img_hw: Tensor | None,
    ) -> tuple[Tensor, Tensor]:
        """The next stage's proposals: this stage's sampled RoIs regressed, GT boxes left out.

        A positive moves by its class's deltas, a negative by those of its best-scored class.
        """
        num_imgs, num_slots = sampled.s.inds.shape
        labels = torch.where(
            labels == head.num_classes, cls_score[:, : head.num_classes].argmax(1), labels
        )
        max_hw = None if img_hw is None else img_hw.repeat_interleave(num_slots, 0)
        boxes = head.regress(sampled.rois[:, 1:], labels, bbox_pred, max_hw)
        valid = sampled.s.valid & ~sampled.is_gt
        return boxes.reshape(num_imgs, num_slots, 4), valid

    @torch.no_grad()
    def predict(
        self,
        feats: Sequence[Tensor],
        proposals: Sequence[Tensor],
        img_hw: Tensor,
        img_metas: Sequence[ImgMeta],
        rescale: bool = True,
        cfg: RCNNTestCfg | None = None,
    ) -> list[Detections]:
        """Detections of the last stage, with class scores averaged over the stages."""
        rois = rois_from(proposals)
        max_hw = img_hw[rois[:, 0].long()]
        scores: list[Tensor] = []
        for stage in range(self.num_stages):
            cls_score, bbox_pred = self._bbox_forward(stage, feats, rois)
            scores.append(cls_score)
            if stage < self.num_stages - 1:
                head = self.head(stage)
                labels = cls_score[:, : head.num_classes].argmax(1)
                rois = torch.cat(
                    [rois[:, :1], head.regress(rois[:, 1:], labels, bbox_pred, max_hw)], 1
                )
        mean_score = torch.stack(scores).mean(0)
        cfg = cfg or self.test_cfg
        dets = detections(
            self.head(-1), rois, mean_score, bbox_pred, img_hw, img_metas, len(proposals),
            cfg, rescale,
        )  # fmt: skip
        if self.with_mask:
            predict_masks(
                self.mask_branches(), feats, dets, img_metas, rescale, cfg.mask_thr_binary,
                cfg.mask_paste,
            )  # fmt: skip
        return dets


def _per_stage(num_stages: int, values: Sequence[Any], where: str) -> None:
    if num_stages < 1:
        raise ModelError(f"model.roi_head.num_stages must be at least 1, got {num_stages}.")
    if len(values) != num_stages:
        raise ModelError(
            f"{where} has {len(values)} entries but model.roi_head.num_stages is {num_stages}; "
            "give one per stage."
        )


def _mask_stages(
    num_stages: int,
    extractor: SingleRoIExtractor | list[SingleRoIExtractor] | None,
    head: FCNMaskHead | list[FCNMaskHead] | None,
    num_classes: int,
) -> tuple[nn.ModuleList, nn.ModuleList]:
    """One mask extractor and head per stage; a single head is copied, each copy re-drawn."""
    where = "model.roi_head"
    if head is None:
        raise ModelError(
            f"{where} has a mask_roi_extractor but no mask_head; add the mask_head "
            "(FCNMaskHead) or remove the extractor."
        )
    if isinstance(head, list):
        _per_stage(num_stages, head, f"{where}.mask_head")
        heads = head
    else:
        heads = [head] + [copy.deepcopy(head) for _ in range(num_stages - 1)]
        for h in heads[1:]:
            h.reset_parameters()
    if extractor is None:
        raise ModelError(
            f"{where}.mask_head needs a mask_roi_extractor (a SingleRoIExtractor with RoIAlign "
            "output_size 14 in mmdet's Cascade Mask R-CNN)."
        )
    if isinstance(extractor, list):
        _per_stage(num_stages, extractor, f"{where}.mask_roi_extractor")
        extractors = extractor
    else:
        extractors = [extractor] * num_stages  # one shared (it has no weights)
    for stage_head, stage_extractor in zip(heads, extractors, strict=True):
        check_mask_head(stage_head, stage_extractor, num_classes)
    return nn.ModuleList(extractors), nn.ModuleList(heads)

"""StandardRoIHead: sample proposals against the GT, pool their features, classify and refine;
with a mask branch (Mask R-CNN), predict a mask on each positive RoI and each detection."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from detcli.errors import ModelError
from detcli.models.rescale import boxes_to_original
from detcli.models.roi_heads.bbox_head import Shared2FCBBoxHead
from detcli.models.roi_heads.fcn_mask_head import FCNMaskHead
from detcli.models.roi_heads.mask_branch import MaskBranch, mask_loss, predict_masks
from detcli.models.roi_heads.mask_paste import PASTE_MODES
from detcli.models.roi_heads.roi_extractor import SingleRoIExtractor, as_pair, rois_from
from detcli.models.run_cfgs import RCNNTestCfg, StageTrainCfg
from detcli.models.shapes import FeatureMaps, Wiring
from detcli.models.task_modules.nms import multiclass_nms
from detcli.models.task_modules.padding import pad_boxes, pad_labels
from detcli.models.task_modules.random_sampler import BatchSample, with_gt_as_candidates
from detcli.registry import MODELS, Model
from detcli.structures import Detections, ImgMeta, InstanceMasks


@MODELS.register()
class StandardRoIHead(nn.Module):
    """mmdet's StandardRoIHead: the box branch, and the mask branch when `mask_head` is given.

    The mask branch has its own extractor (`mask_roi_extractor`, RoIAlign 14 in mmdet's
    configs); it trains on the box branch's positive RoIs and, at test time, predicts a mask
    on each final detection box.
    """

    def __init__(
        self,
        bbox_roi_extractor: Model[SingleRoIExtractor],
        bbox_head: Model[Shared2FCBBoxHead],
        mask_roi_extractor: Model[SingleRoIExtractor] | None = None,
        mask_head: Model[FCNMaskHead] | None = None,
        train_cfg: StageTrainCfg | None = None,
        test_cfg: RCNNTestCfg | None = None,
        init_cfg: dict[str, Any] | list[dict[str, Any]] | None = None,
    ):
        super().__init__()
        self.bbox_roi_extractor = bbox_roi_extractor
        self.bbox_head = bbox_head
        if mask_head is not None:
            check_mask_head(mask_head, mask_roi_extractor, bbox_head.num_classes)
        elif mask_roi_extractor is not None:
            raise ModelError(
                "model.roi_head has a mask_roi_extractor but no mask_head; add the mask_head "
                "(FCNMaskHead) or remove the extractor."
            )
        self.mask_roi_extractor = mask_roi_extractor
        self.mask_head = mask_head
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg or RCNNTestCfg()
        check_mask_test_cfg(self.test_cfg)
        self.init_cfg = init_cfg

    @property
    def with_mask(self) -> bool:
        """Whether it predicts masks (has a mask head)."""
        return self.mask_head is not None

    def mask_branches(self) -> list[MaskBranch]:
        """The mask extractor and head (a list: a cascade has one pair per stage)."""
        if self.mask_head is None or self.mask_roi_extractor is None:
            return []
        return [(self.mask_roi_extractor, self.mask_head)]

    def wire(self, inputs: FeatureMaps, wiring: Wiring) -> None:
        """Wire each extractor from the maps it pools, and each head from its extractor."""
        rois = self.bbox_roi_extractor.wire(inputs, wiring.child("bbox_roi_extractor"))
        self.bbox_head.wire(rois, wiring.child("bbox_head"))
        if self.mask_head is None or self.mask_roi_extractor is None:
            return
        mask_rois = self.mask_roi_extractor.wire(inputs, wiring.child("mask_roi_extractor"))
        self.mask_head.wire(mask_rois, wiring.child("mask_head"))
        check_mask_size(self.mask_head, self.train_cfg, wiring.child("mask_head"), "rcnn")

    @property
    def num_classes(self) -> int:
        """The number of object classes the box head scores."""
        return int(self.bbox_head.num_classes)

    def _bbox_forward(self, feats: Sequence[Tensor], rois: Tensor) -> tuple[Tensor, Tensor]:
        pooled = self.bbox_roi_extractor(feats[: self.bbox_roi_extractor.num_inputs], rois)
        scores_and_deltas: tuple[Tensor, Tensor] = self.bbox_head(pooled)
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
        """`loss_cls`, `loss_bbox`, `acc` on proposals sampled against the GT of each image,
        and `loss_mask` on the positives with a mask head (which needs `gt_masks`).

        (`img_hw`, each image's size, is for heads that regress the proposals: cascades.)
        """
        if self.train_cfg is None:
            raise ModelError(
                "StandardRoIHead cannot train without model.train_cfg.rcnn (assigner, sampler)."
            )
        gt = GroundTruth.pad(gt_bboxes, gt_labels, gt_bboxes_ignore)
        props, props_valid = pad_boxes(proposals)
        sampled = sample_rois(props, props_valid, gt, self.train_cfg)
        cls_score, bbox_pred = self._bbox_forward(feats, sampled.rois)
        targets = self.bbox_head.get_targets(
            sampled.boxes, gt.boxes, sampled.gt_inds, sampled.labels, sampled.s, self.train_cfg
        )
        losses = self.bbox_head.loss(cls_score, bbox_pred, sampled.rois, targets)
        if self.mask_head is not None and self.mask_roi_extractor is not None:
            if gt_masks is None:
                raise ModelError(
                    "the mask head trains on gt_masks, and the batch has none: load them with "
                    "LoadAnnotations(with_mask=True) and keep gt_masks in Collect's keys "
                    "(PackDetInputs keeps them)."
                )
            extractor, head = self.mask_roi_extractor, self.mask_head
            losses.update(mask_loss(extractor, head, feats, sampled, gt_masks, self.train_cfg))
        return losses

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
        """Detections per image after score threshold and per-class NMS, batched over images.

        With `rescale` the boxes (and masks) are in original image pixels (flip undone, resize
        undone, clipped); without, in the pixels of the network input.
        """
        cfg = cfg or self.test_cfg
        rois = rois_from(proposals)
        cls_score, bbox_pred = self._bbox_forward(feats, rois)
        dets = detections(
            self.bbox_head, rois, cls_score, bbox_pred, img_hw, img_metas, len(proposals),
            cfg, rescale,
        )  # fmt: skip
        if self.mask_head is not None and self.mask_roi_extractor is not None:
            predict_masks(
                self.mask_branches(), feats, dets, img_metas, rescale, cfg.mask_thr_binary,
                cfg.mask_paste,
            )  # fmt: skip
        return dets


def check_mask_size(
    head: FCNMaskHead, cfg: StageTrainCfg | None, wiring: Wiring, where: str
) -> None:
    """The wired mask head's output must be the size of its targets (`mask_size`)."""
    if cfg is None or head.roi_feat_size is None:
        return
    side = head.output_size
    if as_pair(cfg.mask_size) != (side, side):
        wiring.report(
            (),
            f"it predicts {side} x {side} masks (roi_feat_size x upsample scale_factor), but "
            f"train_cfg.{where}.mask_size is {cfg.mask_size}; set mask_size: {side}.",
        )


def check_mask_test_cfg(cfg: RCNNTestCfg) -> None:
    """`mask_thr_binary` is a probability; `mask_paste` one of the paste modes."""
    if not 0 <= cfg.mask_thr_binary <= 1:
        raise ModelError(
            "model.test_cfg.rcnn.mask_thr_binary is a probability threshold in [0, 1], got "
            f"{cfg.mask_thr_binary}."
        )
    if cfg.mask_paste not in PASTE_MODES:
        raise ModelError(
            f"model.test_cfg.rcnn.mask_paste is {cfg.mask_paste!r}; use one of "
            f"{', '.join(PASTE_MODES)}."
        )


def check_mask_head(
    mask_head: FCNMaskHead, extractor: SingleRoIExtractor | None, num_classes: int
) -> None:
    """A mask head needs its extractor and, unless class-agnostic, the box head's classes."""
    if extractor is None:
        raise ModelError(
            "model.roi_head.mask_head needs a mask_roi_extractor (a SingleRoIExtractor with "
            "RoIAlign output_size 14 in mmdet's Mask R-CNN)."
        )
    if not mask_head.class_agnostic and mask_head.num_classes != num_classes:
        raise ModelError(
            f"model.roi_head.mask_head.num_classes is {mask_head.num_classes} but "
            f"model.roi_head.bbox_head.num_classes is {num_classes}; the mask head predicts a "
            f"mask for each class the box head scores: set both to {num_classes}."
        )


@dataclass
class GroundTruth:
    """A batch's GT padded to one tensor each: boxes (B, G, 4), labels (B, G), ignore regions."""

    boxes: Tensor
    valid: Tensor
    labels: Tensor
    ignore: Tensor | None
    ignore_valid: Tensor | None

    @classmethod
    def pad(
        cls,
        gt_bboxes: Sequence[Tensor],
        gt_labels: Sequence[Tensor],
        gt_bboxes_ignore: Sequence[Tensor] | None,
    ) -> GroundTruth:
        boxes, valid = pad_boxes(gt_bboxes)
        ignore, ignore_valid = (
            (None, None) if gt_bboxes_ignore is None else pad_boxes(gt_bboxes_ignore)
        )
        return cls(boxes, valid, pad_labels(gt_labels), ignore, ignore_valid)


@dataclass
class SampledRoIs:
    """The RoIs one stage trains on, B images x S slots (`BatchSample`), with their assignment."""

    boxes: Tensor  # (B, S, 4)
    rois: Tensor  # (B * S, 5): image index, box
    s: BatchSample
    gt_inds: Tensor  # (B, S): matched GT + 1, 0 negative
    labels: Tensor  # (B, S): the matched GT's class
    is_gt: Tensor  # (B, S): the slot holds a GT box added as a proposal


def sample_rois(
    props: Tensor, props_valid: Tensor, gt: GroundTruth, cfg: StageTrainCfg
) -> SampledRoIs:
    """Assign the padded proposals (B, N, 4) to the GT and sample them, the whole batch at once.

    One assign and one sample call over proposals padded to a common count: per-image loops
    cost ops and host waits per image.
    """
    assigned = cfg.assigner.assign_batch(
        props, props_valid, gt.boxes, gt.valid, gt.labels, gt.ignore, gt.ignore_valid
    )
    cands, gt_inds, cand_labels = props, assigned.gt_inds, assigned.labels
    num_gt_cands = 0
    if cfg.sampler.add_gt_as_proposals:
        cands, gt_inds, cand_labels = with_gt_as_candidates(
            cands, gt_inds, cand_labels, gt.boxes, gt.valid, gt.labels
        )
        num_gt_cands = gt.boxes.shape[1]
    s = cfg.sampler.sample_batch(gt_inds)
    boxes = cands.gather(1, s.inds[..., None].expand(-1, -1, 4))  # (B, S, 4)
    num_imgs, num_slots = s.inds.shape
    img_ids = torch.arange(num_imgs, device=boxes.device, dtype=boxes.dtype)
    rois = torch.cat([img_ids[:, None, None].expand(-1, num_slots, 1), boxes], 2).flatten(0, 1)
    return SampledRoIs(
        boxes,
        rois,
        s,
        gt_inds.gather(1, s.inds),
        cand_labels.gather(1, s.inds),
        s.inds < num_gt_cands,
    )


def detections(
    head: Shared2FCBBoxHead,
    rois: Tensor,
    cls_score: Tensor,
    bbox_pred: Tensor,
    img_hw: Tensor,
    img_metas: Sequence[ImgMeta],
    num_imgs: int,
    cfg: RCNNTestCfg,
    rescale: bool = True,
) -> list[Detections]:
    """Detections per image from a box head's outputs for `rois`: score threshold, per-class
    NMS, batched over images. With `rescale` the boxes are in original image pixels (flip
    undone, resize undone, clipped); without, in the pixels of the network input."""
    img_ids = rois[:, 0].long()
    boxes, scores = head.predict_boxes(rois, cls_score, bbox_pred, img_hw[img_ids])
    if cfg.min_bbox_size > 0:  # in network-input pixels, before rescaling (torchvision)
        wh = boxes[..., 2:] - boxes[..., :2]
        small = (wh < cfg.min_bbox_size).any(-1)
        scores = scores.masked_fill(small, 0)
    if rescale:
        boxes = boxes_to_original(boxes, img_ids, img_metas)
    per_image = multiclass_nms(
        boxes,
        scores,
        img_ids,
        num_imgs,
        cfg.score_thr,
        cfg.nms.iou_threshold,
        cfg.max_per_img,
        cfg.nms.class_agnostic,
    )
    return [Detections(b.float(), s.float(), lab.long()) for b, s, lab in per_image]

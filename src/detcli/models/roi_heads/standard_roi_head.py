"""StandardRoIHead: sample proposals against the GT, pool their features, classify and refine."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from detcli.errors import ModelError
from detcli.models.rescale import boxes_to_original
from detcli.models.roi_heads.bbox_head import Shared2FCBBoxHead
from detcli.models.roi_heads.roi_extractor import SingleRoIExtractor
from detcli.models.run_cfgs import RCNNTestCfg, StageTrainCfg
from detcli.models.shapes import FeatureMaps, Wiring
from detcli.models.task_modules.nms import multiclass_nms
from detcli.models.task_modules.padding import pad_boxes, pad_labels
from detcli.models.task_modules.random_sampler import with_gt_as_candidates
from detcli.registry import MODELS, Model
from detcli.structures import Detections, ImgMeta


def rois_from(boxes: Sequence[Tensor]) -> Tensor:
    """(K, 5) `image_index, x1, y1, x2, y2` from per-image boxes (n_i, >=4)."""
    return torch.cat(
        [torch.cat([b.new_full((b.shape[0], 1), i), b[:, :4]], dim=1) for i, b in enumerate(boxes)]
    )


@MODELS.register()
class StandardRoIHead(nn.Module):
    """Box branch of a two-stage detector (mmdet's StandardRoIHead without masks)."""

    def __init__(
        self,
        bbox_roi_extractor: Model[SingleRoIExtractor],
        bbox_head: Model[Shared2FCBBoxHead],
        train_cfg: StageTrainCfg | None = None,
        test_cfg: RCNNTestCfg | None = None,
        init_cfg: dict[str, Any] | list[dict[str, Any]] | None = None,
    ):
        super().__init__()
        self.bbox_roi_extractor = bbox_roi_extractor
        self.bbox_head = bbox_head
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg or RCNNTestCfg()
        self.init_cfg = init_cfg

    def wire(self, inputs: FeatureMaps, wiring: Wiring) -> None:
        """Wire the extractor from the maps it pools, and the box head from the extractor."""
        rois = self.bbox_roi_extractor.wire(inputs, wiring.child("bbox_roi_extractor"))
        self.bbox_head.wire(rois, wiring.child("bbox_head"))

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
    ) -> dict[str, Tensor]:
        """`loss_cls`, `loss_bbox`, `acc` on proposals sampled against the GT of each image."""
        if self.train_cfg is None:
            raise ModelError(
                "StandardRoIHead cannot train without model.train_cfg.rcnn (assigner, sampler)."
            )
        cfg = self.train_cfg
        # The whole batch in one assign and one sample call, over proposals padded to a
        # common count: per-image loops cost ops and host waits per image.
        props, props_valid = pad_boxes(proposals)
        gt, gt_valid = pad_boxes(gt_bboxes)
        labels = pad_labels(gt_labels)
        ignore, ignore_valid = (
            (None, None) if gt_bboxes_ignore is None else pad_boxes(gt_bboxes_ignore)
        )
        assigned = cfg.assigner.assign_batch(
            props, props_valid, gt, gt_valid, labels, ignore, ignore_valid
        )
        cands, gt_inds, cand_labels = props, assigned.gt_inds, assigned.labels
        if cfg.sampler.add_gt_as_proposals:
            cands, gt_inds, cand_labels = with_gt_as_candidates(
                cands, gt_inds, cand_labels, gt, gt_valid, labels
            )
        s = cfg.sampler.sample_batch(gt_inds)
        boxes = cands.gather(1, s.inds[..., None].expand(-1, -1, 4))  # (B, S, 4)
        num_imgs, num_slots = s.inds.shape
        img_ids = torch.arange(num_imgs, device=boxes.device, dtype=boxes.dtype)
        rois = torch.cat([img_ids[:, None, None].expand(-1, num_slots, 1), boxes], 2)
        rois = rois.flatten(0, 1)
        cls_score, bbox_pred = self._bbox_forward(feats, rois)
        targets = self.bbox_head.get_targets(
            boxes, gt, gt_inds.gather(1, s.inds), cand_labels.gather(1, s.inds), s, cfg
        )
        return self.bbox_head.loss(cls_score, bbox_pred, rois, targets)

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

        With `rescale` the boxes are in original image pixels (flip undone, resize undone,
        clipped); without, in the pixels of the network input.
        """
        cfg = cfg or self.test_cfg
        rois = rois_from(proposals)
        cls_score, bbox_pred = self._bbox_forward(feats, rois)
        img_ids = rois[:, 0].long()
        boxes, scores = self.bbox_head.predict_boxes(rois, cls_score, bbox_pred, img_hw[img_ids])
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
            len(proposals),
            cfg.score_thr,
            cfg.nms.iou_threshold,
            cfg.max_per_img,
            cfg.nms.class_agnostic,
        )
        return [Detections(b.float(), s.float(), lab.long()) for b, s, lab in per_image]

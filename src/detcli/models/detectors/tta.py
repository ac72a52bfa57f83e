"""Test-time augmentation for two-stage detectors, as mmdet's `aug_test` does it.

Every view (a scale, a flip) proposes boxes; the proposals, mapped back to the original image,
are merged by NMS. The box head then scores those same proposals in every view, the refined
boxes are mapped back and averaged with the scores over views, and one per-class NMS picks
the detections, in original image pixels. A mask head then predicts each detection's mask in
every view; the probabilities, in the original orientation, are averaged and pasted once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from detcli.errors import ModelError
from detcli.models.meta import img_hw
from detcli.models.rescale import boxes_to_input, boxes_to_original
from detcli.models.roi_heads.mask_branch import flat_detections, mask_probs, paste_detections
from detcli.models.task_modules.nms import batch_nms, multiclass_nms
from detcli.structures import Detections, ImgMeta


def merged_proposals(
    model: Any, views: Sequence[tuple[list[Tensor], Tensor, Sequence[ImgMeta]]]
) -> tuple[Tensor, Tensor]:
    """Every view's proposals in original pixels, NMS-merged per image: boxes (K, 4), img_ids."""
    cfg = model.rpn_head.test_cfg
    boxes, scores, img_ids = [], [], []
    for feats, hw, metas in views:
        for i, props in enumerate(model.rpn_head.proposals(*model.rpn_head(feats), hw)):
            ids = torch.full((props.shape[0],), i, dtype=torch.long, device=props.device)
            boxes.append(boxes_to_original(props[:, :4], ids, metas))
            scores.append(props[:, 4])
            img_ids.append(ids)
    all_boxes, all_scores, all_ids = torch.cat(boxes), torch.cat(scores), torch.cat(img_ids)
    num_imgs = len(views[0][2])
    keeps = batch_nms(
        all_boxes,
        all_scores,
        torch.zeros_like(all_ids),
        all_ids,
        num_imgs,
        1,
        cfg.nms.iou_threshold,
        cfg.max_per_img,
    )
    keep = torch.cat(keeps)
    return all_boxes[keep], all_ids[keep]


@torch.no_grad()
def aug_test(
    model: Any, imgs: Sequence[Tensor], img_metas: Sequence[Sequence[ImgMeta]]
) -> list[Detections]:
    """Detections per image from several views (`imgs[v]`: view v of the batch), original pixels."""
    if getattr(model.roi_head, "num_stages", None) is not None:
        raise ModelError(
            "test-time augmentation merges one box head's outputs; a cascade's stages are not "
            "merged yet. Evaluate this model without --tta."
        )
    views = []
    for img, metas in zip(imgs, img_metas, strict=True):
        hw = img_hw(metas, (int(img.shape[-2]), int(img.shape[-1])), img.device)
        views.append((model.extract_feat(img), hw, metas))
    boxes, img_ids = merged_proposals(model, views)
    head = model.roi_head
    total_boxes: Tensor | None = None
    total_scores: Tensor | None = None
    for feats, hw, metas in views:
        rois = torch.cat([img_ids[:, None].float(), boxes_to_input(boxes, img_ids, metas)], 1)
        cls_score, bbox_pred = head._bbox_forward(feats, rois)
        view_boxes, view_scores = head.bbox_head.predict_boxes(
            rois, cls_score, bbox_pred, hw[img_ids]
        )
        back = boxes_to_original(view_boxes, img_ids, metas)
        total_boxes = back if total_boxes is None else total_boxes + back
        total_scores = view_scores if total_scores is None else total_scores + view_scores
    assert total_boxes is not None and total_scores is not None
    cfg = head.test_cfg
    per_image = multiclass_nms(
        total_boxes / len(views),
        total_scores / len(views),
        img_ids,
        len(img_metas[0]),
        cfg.score_thr,
        cfg.nms.iou_threshold,
        cfg.max_per_img,
        cfg.nms.class_agnostic,
    )
    dets = [Detections(b.float(), s.float(), lab.long()) for b, s, lab in per_image]
    if getattr(head, "with_mask", False):
        merged_masks(head, views, dets, cfg.mask_thr_binary, cfg.mask_paste)
    return dets


def merged_masks(
    head: Any,
    views: Sequence[tuple[list[Tensor], Tensor, Sequence[ImgMeta]]],
    dets: Sequence[Detections],
    threshold: float,
    paste: str = "bilinear",
) -> None:
    """Masks of the merged detections: each view predicts them on the boxes mapped into it, the
    probabilities (mirrored back where the view is flipped) are averaged, then pasted once at
    the original size (mmdet's `merge_aug_masks`)."""
    boxes, labels, img_ids = flat_detections(dets, views[0][1].device)
    probs = [
        mask_probs(head.mask_branches(), feats, boxes, labels, img_ids, metas, True)
        for feats, _, metas in views
    ]
    paste_detections(dets, torch.stack(probs).mean(0), views[0][2], True, threshold, paste)

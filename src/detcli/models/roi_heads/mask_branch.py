"""The mask branch of an RoI head (Mask R-CNN): its loss on the box branch's positive RoIs,
and masks for the final detections, pasted into the original image."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from detcli.errors import ModelError
from detcli.models.rescale import boxes_to_input, masks_to_original
from detcli.models.roi_heads.fcn_mask_head import FCNMaskHead
from detcli.models.roi_heads.mask_paste import paste_masks
from detcli.models.roi_heads.roi_extractor import SingleRoIExtractor, as_pair, rois_from
from detcli.models.run_cfgs import StageTrainCfg
from detcli.structures import Detections, ImgMeta, InstanceMasks

if TYPE_CHECKING:
    from detcli.models.roi_heads.standard_roi_head import SampledRoIs


def mask_loss(
    extractor: SingleRoIExtractor,
    head: FCNMaskHead,
    feats: Sequence[Tensor],
    sampled: SampledRoIs,
    gt_masks: Sequence[InstanceMasks],
    cfg: StageTrainCfg,
) -> dict[str, Tensor]:
    """`loss_mask` of the positive RoIs `sampled` (the box branch's), against `gt_masks`.

    The positives are a leading run of each image's slots, so their count per image (one host
    read) is all that selects them: the mask head runs on positives only, as in mmdet.
    """
    s = sampled.s
    if len(gt_masks) != s.inds.shape[0]:
        raise ModelError(
            f"the batch has {s.inds.shape[0]} images but gt_masks for {len(gt_masks)}; "
            "LoadAnnotations(with_mask=True) must load masks for every image."
        )
    counts = (s.is_pos & s.valid).sum(1).tolist()
    boxes = [sampled.boxes[i, :n] for i, n in enumerate(counts)]
    gt_inds = [sampled.gt_inds[i, :n] - 1 for i, n in enumerate(counts)]
    labels = torch.cat([sampled.labels[i, :n] for i, n in enumerate(counts)])
    mask_pred = head(extractor(feats[: extractor.num_inputs], rois_from(boxes)))
    targets = head.get_targets(
        boxes, gt_inds, gt_masks, as_pair(cfg.mask_size), binarize=not cfg.soft_mask_target
    )
    return head.loss(mask_pred, targets, labels)


MaskBranch = tuple[SingleRoIExtractor, FCNMaskHead]
"""A mask RoI extractor and the mask head it feeds (a cascade has one per stage)."""


@torch.no_grad()
def predict_masks(
    branches: Sequence[MaskBranch],
    feats: Sequence[Tensor],
    dets: Sequence[Detections],
    img_metas: Sequence[ImgMeta],
    rescale: bool,
    threshold: float,
    paste: str = "bilinear",
) -> None:
    """Set each detection's `masks`: bool (K, H, W), predicted on its final box (as mmdet).

    With `rescale` the boxes are in original pixels and the masks are pasted at the original
    size (`ori_shape`); without, in the network input (`img_shape`).
    """
    boxes, labels, img_ids = flat_detections(dets, feats[0].device)
    probs = mask_probs(branches, feats, boxes, labels, img_ids, img_metas, rescale)
    paste_detections(dets, probs, img_metas, rescale, threshold, paste)


def flat_detections(dets: Sequence[Detections], device: torch.device) -> tuple[Tensor, ...]:
    """Every image's detections in one tensor each: boxes (K, 4), labels (K,), image index."""
    counts = torch.tensor([len(d) for d in dets], device=device)
    img_ids = torch.repeat_interleave(torch.arange(len(dets), device=device), counts)
    boxes = torch.cat([d.boxes for d in dets]).to(device)
    return boxes, torch.cat([d.labels for d in dets]).to(device), img_ids


def mask_probs(
    branches: Sequence[MaskBranch],
    feats: Sequence[Tensor],
    boxes: Tensor,
    labels: Tensor,
    img_ids: Tensor,
    img_metas: Sequence[ImgMeta],
    rescale: bool,
) -> Tensor:
    """Mask probabilities (K, s, s) of boxes of class `labels` in images `img_ids`, averaged
    over `branches` (a cascade's stages).

    With `rescale` the boxes are in original pixels: they are mapped into the network input to
    pool their features, and the masks mirrored back where the input was flipped, so they read
    in the original image's orientation (and views of one image can be averaged: TTA).
    """
    size = branches[-1][1].output_size
    if boxes.shape[0] == 0:
        return boxes.new_zeros((0, size, size))
    in_boxes = boxes_to_input(boxes, img_ids, img_metas) if rescale else boxes
    rois = torch.cat([img_ids[:, None].to(in_boxes.dtype), in_boxes], 1)
    pooled: dict[int, Tensor] = {}  # an extractor shared by stages pools once
    stages = []
    for extractor, head in branches:
        if id(extractor) not in pooled:
            pooled[id(extractor)] = extractor(feats[: extractor.num_inputs], rois)
        stages.append(head.predict(pooled[id(extractor)], labels))
    probs = torch.stack(stages).mean(0)
    return masks_to_original(probs, img_ids, img_metas) if rescale else probs


def paste_detections(
    dets: Sequence[Detections],
    probs: Tensor,
    img_metas: Sequence[ImgMeta],
    rescale: bool,
    threshold: float,
    paste: str = "bilinear",
) -> None:
    """Set each image's `masks` from its detections' probabilities (K, s, s), in image order;
    `paste` is a `mask_paste.PASTE_MODES` mode."""
    counts = [len(d) for d in dets]
    for det, meta, det_probs in zip(dets, img_metas, torch.split(probs, counts), strict=True):
        height, width = (meta["ori_shape"] if rescale else meta["img_shape"])[:2]
        boxes = det.boxes.to(probs.device)
        det.masks = paste_masks(det_probs, boxes, int(height), int(width), threshold, paste)

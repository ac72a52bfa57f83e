"""Batched NMS: per-group NMS for a whole batch, then top-k per image."""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.ops import batched_nms, nms


def batch_nms(
    boxes: Tensor,
    scores: Tensor,
    groups: Tensor,
    img_ids: Tensor,
    num_imgs: int,
    num_groups: int,
    iou_threshold: float,
    max_per_img: int,
) -> list[Tensor]:
    """Indices kept per image, best first: NMS per (image, group) pair, then top `max_per_img`.

    `groups` separates what must not suppress each other (classes, or pyramid levels);
    `max_per_img` <= 0 keeps everything NMS keeps.
    """
    if boxes.numel() == 0:
        empty = torch.zeros((0,), dtype=torch.long, device=boxes.device)
        return [empty] * num_imgs
    keep = batched_nms(boxes.float(), scores.float(), img_ids * num_groups + groups, iou_threshold)
    return top_per_image(keep, img_ids[keep], num_imgs, max_per_img)


def nms_per_image(
    boxes: Tensor,
    scores: Tensor,
    groups: Tensor,
    num_imgs: int,
    iou_threshold: float,
    offsets: bool | None = None,
) -> Tensor:
    """Indices kept by NMS within each group, for boxes in `num_imgs` equal image-major blocks.

    One NMS call per image, not one for the batch: a call's cost, and the suppression mask
    it copies to the host, grow with the square of its boxes. Kept indices come image by
    image, best first within an image. `offsets` picks the one-call-per-image form (default:
    on any device but the CPU).
    """
    per_img = boxes.shape[0] // num_imgs
    boxes, scores = boxes.float(), scores.float()
    if offsets is None:
        offsets = boxes.device.type != "cpu"
    if offsets:
        # Shift each group apart so that one call never suppresses across groups; unlike
        # torchvision's batched_nms this costs no host-to-device copy (a host wait).
        span = boxes.max() - boxes.min() + 1
        boxes = boxes + (groups.to(boxes.dtype) * span)[:, None]
    keeps = []
    for i in range(num_imgs):  # per image: a handful of ops each, no loop over boxes
        part = slice(i * per_img, (i + 1) * per_img)
        if offsets:
            keep = nms(boxes[part], scores[part], iou_threshold)
        else:  # torchvision's CPU path loops over groups, faster there than offsets
            keep = batched_nms(boxes[part], scores[part], groups[part], iou_threshold)
        keeps.append(keep + i * per_img)
    return torch.cat(keeps)


def top_per_image(order: Tensor, img_of: Tensor, num_imgs: int, k: int) -> list[Tensor]:
    """Split `order` (best first) by image and keep the first `k` of each (all if k <= 0)."""
    by_img = torch.argsort(img_of, stable=True)  # stable: keeps best-first within an image
    counts = torch.bincount(img_of, minlength=num_imgs).tolist()  # the one host wait
    per_img = torch.split(order[by_img], counts)
    return [o[:k] for o in per_img] if k > 0 else list(per_img)


def multiclass_nms(
    boxes: Tensor,
    scores: Tensor,
    img_ids: Tensor,
    num_imgs: int,
    score_thr: float,
    iou_threshold: float,
    max_per_img: int,
    class_agnostic: bool = False,
) -> list[tuple[Tensor, Tensor, Tensor]]:
    """Final detections per image: (boxes (K, 4), scores (K,), labels (K,)), best first.

    `boxes` (N, C, 4) or (N, 1, 4) and `scores` (N, C) for N boxes of the whole batch; a box
    becomes one candidate per class scoring above `score_thr`, then NMS runs per image and class.
    """
    num_classes = scores.shape[1]
    row, label = torch.nonzero(scores > score_thr, as_tuple=True)
    cand_boxes = boxes[row, label if boxes.shape[1] > 1 else 0]
    cand_scores = scores[row, label]
    cand_imgs = img_ids[row]
    groups = torch.zeros_like(label) if class_agnostic else label
    if cand_boxes.numel() == 0:
        keeps = [torch.zeros((0,), dtype=torch.long, device=boxes.device)] * num_imgs
    else:
        # Weak heads give many boxes exactly equal scores; which of them NMS keeps follows
        # the score sort. MMDetection's (mmcv's) nms uses torch's default, non-stable sort of
        # the candidates in this same order; torchvision's sort is stable. Sorting first as
        # mmcv does makes a tie keep the box MMDetection keeps (its checkpoints' parity test).
        order = torch.sort(cand_scores, descending=True)[1]
        cand_boxes, cand_scores, cand_imgs = cand_boxes[order], cand_scores[order], cand_imgs[order]
        label, groups = label[order], groups[order]
        keep = batched_nms(
            cand_boxes.float(),
            cand_scores.float(),
            cand_imgs * (1 if class_agnostic else num_classes) + groups,
            iou_threshold,
        )
        keeps = top_per_image(keep, cand_imgs[keep], num_imgs, max_per_img)
    return [(cand_boxes[k], cand_scores[k], label[k]) for k in keeps]

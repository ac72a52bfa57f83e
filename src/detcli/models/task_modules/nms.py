"""NMS for a whole batch at once: one torchvision `batched_nms` call, then top-k per image."""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.ops import batched_nms


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
        keep = batched_nms(
            cand_boxes.float(),
            cand_scores.float(),
            cand_imgs * (1 if class_agnostic else num_classes) + groups,
            iou_threshold,
        )
        keeps = top_per_image(keep, cand_imgs[keep], num_imgs, max_per_img)
    return [(cand_boxes[k], cand_scores[k], label[k]) for k in keeps]

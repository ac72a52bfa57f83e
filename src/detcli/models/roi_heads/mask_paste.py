"""Paste per-RoI mask probabilities (K, s, s) back into an image, at their boxes.

`bilinear` (the default, mmdet's and detectron2's):
every image pixel centre is
located in its box's s x s mask and read bilinearly, zero outside the mask. That resampling is
separable (a pixel's row weights do not depend on its column), so instead of a grid_sample over
a (K, H, W, 2) grid it is two batched matrix products, `rows (K, H, s) @ mask @ cols (K, s, W)`,
whose weight matrices hold at most two non-zeros per row. Chunks bound the float memory.

`torchvision`: torchvision's `paste_masks_in_image` itself (each mask padded by one cell, its
box widened to match and rounded to whole pixels, then resized into it), for detections that
must be torchvision's pixel for pixel (its checkpoints); one mask at a time.
"""

from __future__ import annotations

import torch
from torch import Tensor

# Floats of pasted probabilities held at once (a chunk): 256 MiB.
CHUNK_ELEMENTS = 1 << 26
PASTE_MODES = ("bilinear", "torchvision")


def paste_masks(
    masks: Tensor,
    boxes: Tensor,
    height: int,
    width: int,
    threshold: float = 0.5,
    mode: str = "bilinear",
    chunk_elements: int = CHUNK_ELEMENTS,
) -> Tensor:
    """Bool (K, height, width): mask probabilities `masks` (K, s, t) stretched onto `boxes`
    (K, 4, xyxy in the target image's pixels), `>= threshold`."""
    num = masks.shape[0]
    out = torch.zeros((num, height, width), dtype=torch.bool, device=masks.device)
    if num == 0 or height == 0 or width == 0:
        return out
    if mode == "torchvision":
        from torchvision.models.detection.roi_heads import paste_masks_in_image

        pasted: Tensor = paste_masks_in_image(
            masks[:, None].float(), boxes.float(), (height, width)
        )
        return pasted[:, 0] >= threshold
    step = max(1, chunk_elements // (height * width))
    for start in range(0, num, step):
        part = slice(start, start + step)
        box = boxes[part].float()
        rows = interp_weights(box[:, 1], box[:, 3], height, masks.shape[1])  # (k, H, s)
        cols = interp_weights(box[:, 0], box[:, 2], width, masks.shape[2])  # (k, W, t)
        pasted = rows @ masks[part].float() @ cols.transpose(1, 2)
        out[part] = pasted >= threshold
    return out


def interp_weights(lo: Tensor, hi: Tensor, size: int, mask_size: int) -> Tensor:
    """(K, size, mask_size): bilinear weights of mask cells for each image pixel along one axis.

    Pixel centre `c` falls at mask coordinate `(c - lo) / (hi - lo) * mask_size - 0.5` (cell
    centres at integers, as grid_sample with align_corners=False); the weight of cell `m` is
    the triangle `max(0, 1 - |coord - m|)`, so cells beyond the mask contribute nothing.
    """
    centres = torch.arange(size, device=lo.device, dtype=torch.float32) + 0.5
    extent = (hi - lo).clamp(min=1e-6)[:, None]  # an empty box pastes an empty mask
    coord = (centres[None, :] - lo[:, None]) / extent * mask_size - 0.5
    cells = torch.arange(mask_size, device=lo.device, dtype=torch.float32)
    return (1 - (coord[..., None] - cells).abs()).clamp(min=0)

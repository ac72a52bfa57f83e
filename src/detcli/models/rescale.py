"""Map boxes between the network input and the original image: flip, resize, clip."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from detcli.errors import ModelError
from detcli.structures import ImgMeta


def _per_image(img_metas: Sequence[ImgMeta], device: torch.device) -> dict[str, Tensor]:
    """(B, ...) tensors of what un-transforming needs, from each image's metadata."""
    rows = []
    for meta in img_metas:
        try:
            img_shape, ori_shape = meta["img_shape"], meta["ori_shape"]
        except KeyError as exc:
            raise ModelError(
                f"an image's metadata lacks {exc.args[0]!r}; boxes cannot be mapped back to the "
                "original image (the data pipeline's Resize and LoadImageFromFile record it)."
            ) from None
        factor = np.asarray(meta.get("scale_factor", 1.0), dtype=np.float32).reshape(-1)
        scale = np.resize(factor, 4) if factor.size in (1, 2, 4) else factor[:4]
        direction = meta.get("flip_direction") if meta.get("flip", False) else None
        hflip = direction in ("horizontal", "diagonal")
        vflip = direction in ("vertical", "diagonal")
        rows.append([img_shape[1], img_shape[0], ori_shape[1], ori_shape[0], *scale, hflip, vflip])
    table = torch.tensor(rows, dtype=torch.float32).to(device)  # one copy to the device
    return {
        "img_wh": table[:, 0:2],
        "ori_wh": table[:, 2:4],
        "scale": table[:, 4:8],
        "hflip": table[:, 8] > 0,
        "vflip": table[:, 9] > 0,
    }


def _flip(boxes: Tensor, m: dict[str, Tensor], shape: tuple[int, ...]) -> Tensor:
    """Mirror boxes flagged `hflip` / `vflip` within the network input (img_shape)."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    w = m["img_wh"][:, 0].reshape(shape)
    h = m["img_wh"][:, 1].reshape(shape)
    hflip = m["hflip"].reshape(shape)
    vflip = m["vflip"].reshape(shape)
    x1, x2 = torch.where(hflip, w - x2, x1), torch.where(hflip, w - x1, x2)
    y1, y2 = torch.where(vflip, h - y2, y1), torch.where(vflip, h - y1, y2)
    return torch.stack([x1, y1, x2, y2], dim=-1)


def boxes_to_original(boxes: Tensor, img_ids: Tensor, img_metas: Sequence[ImgMeta]) -> Tensor:
    """Boxes (N, ..., 4) of images `img_ids` (N,) in original pixels: unflip, unscale, clip."""
    if boxes.numel() == 0:
        return boxes.float()
    m = {k: v[img_ids] for k, v in _per_image(img_metas, boxes.device).items()}
    shape = (boxes.shape[0],) + (1,) * (boxes.dim() - 2)
    out = _flip(boxes.float(), m, shape) / m["scale"].reshape(*shape, 4)
    upper = torch.cat([m["ori_wh"], m["ori_wh"]], dim=1).reshape(*shape, 4)
    return torch.minimum(out.clamp(min=0), upper)


def boxes_to_input(boxes: Tensor, img_ids: Tensor, img_metas: Sequence[ImgMeta]) -> Tensor:
    """Boxes (N, ..., 4) in original pixels into each image's network input: scale, then flip."""
    if boxes.numel() == 0:
        return boxes.float()
    m = {k: v[img_ids] for k, v in _per_image(img_metas, boxes.device).items()}
    shape = (boxes.shape[0],) + (1,) * (boxes.dim() - 2)
    return _flip(boxes.float() * m["scale"].reshape(*shape, 4), m, shape)


def masks_to_original(masks: Tensor, img_ids: Tensor, img_metas: Sequence[ImgMeta]) -> Tensor:
    """Per-box masks (N, h, w) predicted in flipped inputs, mirrored back (the unflipped box's).

    Resizing needs nothing here: a box's mask is stretched onto its box in whatever pixels.
    """
    if masks.numel() == 0:
        return masks
    m = {k: v[img_ids] for k, v in _per_image(img_metas, masks.device).items()}
    masks = torch.where(m["hflip"][:, None, None], masks.flip(-1), masks)
    return torch.where(m["vflip"][:, None, None], masks.flip(-2), masks)

"""Reading per-image metadata (`ImgMeta`) into tensors the heads compute with."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from detcli.errors import ModelError
from detcli.structures import ImgMeta


def hw_of(img_metas: Sequence[ImgMeta], key: str, device: torch.device) -> Tensor:
    """(B, 2) float (h, w) of `img_shape` / `pad_shape` / `ori_shape` for every image."""
    try:
        values = [meta[key][:2] for meta in img_metas]  # type: ignore[literal-required]
    except KeyError:
        raise ModelError(
            f"an image's metadata has no {key!r}; the data pipeline must record it "
            "(Resize sets img_shape, Pad sets pad_shape, LoadImageFromFile sets ori_shape)."
        ) from None
    return torch.tensor(values, dtype=torch.float32, device=device).reshape(-1, 2)


def pad_hw(img_metas: Sequence[ImgMeta], batch_hw: tuple[int, int], device: torch.device) -> Tensor:
    """(B, 2) each image's padded (h, w) in the batch tensor (img_shape if it was not padded)."""
    values = []
    for meta in img_metas:
        shape = meta.get("pad_shape") or meta.get("img_shape") or batch_hw
        values.append([min(shape[0], batch_hw[0]), min(shape[1], batch_hw[1])])
    return torch.tensor(values, dtype=torch.float32, device=device).reshape(-1, 2)


def img_hw(img_metas: Sequence[ImgMeta], batch_hw: tuple[int, int], device: torch.device) -> Tensor:
    """(B, 2) each image's (h, w) before padding (the batch size when the meta does not say)."""
    values = []
    for meta in img_metas:
        shape = meta.get("img_shape") or batch_hw
        values.append([shape[0], shape[1]])
    return torch.tensor(values, dtype=torch.float32, device=device).reshape(-1, 2)

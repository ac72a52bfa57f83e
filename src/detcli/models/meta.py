"""Reading per-image metadata (`ImgMeta`) into tensors the heads compute with."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from detcli.structures import ImgMeta


def pad_hw(img_metas: Sequence[ImgMeta], batch_hw: tuple[int, int], device: torch.device) -> Tensor:
    """(B, 2) each image's padded (h, w) in the batch tensor (img_shape if it was not padded)."""
    values = []
    for meta in img_metas:
        shape = meta.get("pad_shape") or meta.get("img_shape") or batch_hw
        values.append([min(shape[0], batch_hw[0]), min(shape[1], batch_hw[1])])
    return torch.tensor(values, dtype=torch.float32).reshape(-1, 2).to(device)


def img_hw(img_metas: Sequence[ImgMeta], batch_hw: tuple[int, int], device: torch.device) -> Tensor:
    """(B, 2) each image's (h, w) before padding (the batch size when the meta does not say)."""
    values = []
    for meta in img_metas:
        shape = meta.get("img_shape") or batch_hw
        values.append([shape[0], shape[1]])
    return torch.tensor(values, dtype=torch.float32).reshape(-1, 2).to(device)

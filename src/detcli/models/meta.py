"""Reading per-image metadata (`ImgMeta`) into tensors the heads compute with."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from detcli.structures import ImgMeta

# Sizes repeat from batch to batch; a cached device copy saves a host-to-device copy, which
# on a GPU waits for every queued kernel. The heads only read these tensors.
_CACHE: dict[tuple[object, ...], Tensor] = {}
_CACHE_SIZE = 256


def pad_hw(img_metas: Sequence[ImgMeta], batch_hw: tuple[int, int], device: torch.device) -> Tensor:
    """(B, 2) each image's padded (h, w) in the batch tensor (img_shape if it was not padded)."""
    values = []
    for meta in img_metas:
        shape = meta.get("pad_shape") or meta.get("img_shape") or batch_hw
        values.append((min(shape[0], batch_hw[0]), min(shape[1], batch_hw[1])))
    return _on_device(values, device)


def img_hw(img_metas: Sequence[ImgMeta], batch_hw: tuple[int, int], device: torch.device) -> Tensor:
    """(B, 2) each image's (h, w) before padding (the batch size when the meta does not say)."""
    values = []
    for meta in img_metas:
        shape = meta.get("img_shape") or batch_hw
        values.append((shape[0], shape[1]))
    return _on_device(values, device)


def _on_device(values: list[tuple[int, int]], device: torch.device) -> Tensor:
    key = (tuple(values), str(device))
    hit = _CACHE.get(key)
    if hit is None:
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.clear()
        hit = torch.tensor(values, dtype=torch.float32).reshape(-1, 2).to(device)
        _CACHE[key] = hit
    return hit

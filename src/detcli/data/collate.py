"""collate: `Sample`s -> one `Batch`, `AugSample`s -> one `AugBatch` (see structures.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import torch

from detcli.structures import AugBatch, Batch


def pad_stack(images: Sequence[torch.Tensor]) -> torch.Tensor:
    """(B, C, H, W): images padded with zeros at the bottom and right to the largest H and W."""
    c = images[0].shape[0]
    h = max(int(i.shape[-2]) for i in images)
    w = max(int(i.shape[-1]) for i in images)
    if all(tuple(i.shape[-2:]) == (h, w) for i in images):
        return torch.stack(list(images))
    out = images[0].new_zeros((len(images), c, h, w))
    for k, img in enumerate(images):
        out[k, :, : img.shape[-2], : img.shape[-1]] = img
    return out


def _per_image_batch(samples: Sequence[dict[str, Any]]) -> Batch:
    img = pad_stack([s["img"] for s in samples])
    metas = [dict(s["img_metas"], batch_input_shape=tuple(img.shape[-2:])) for s in samples]
    batch: dict[str, Any] = {"img": img, "img_metas": metas}
    for key in samples[0]:
        if key not in batch:
            batch[key] = [s[key] for s in samples]
    return cast(Batch, batch)


def collate(samples: Sequence[Any]) -> Batch | AugBatch:
    """Pad images into one tensor per view; keep targets and metadata per image."""
    if not samples:
        raise ValueError("collate: empty batch")
    if isinstance(samples[0]["img"], torch.Tensor):
        # gt_masks stay one InstanceMasks per image: their sizes differ and the head crops them
        return _per_image_batch(samples)
    num_views = len(samples[0]["img"])
    views = [
        _per_image_batch([{"img": s["img"][v], "img_metas": s["img_metas"][v]} for s in samples])
        for v in range(num_views)
    ]
    return {"img": [v["img"] for v in views], "img_metas": [v["img_metas"] for v in views]}


def collate_skipping_failed(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """`collate` of the samples that loaded, plus `failed`: {position in batch: message}.

    Evaluation and prediction batches: an image that could not be read (`on_bad_image: warn`,
    or a file given to `detcli predict`) yields `{"failed": message}`; the inference loop gives
    it empty detections and names it, instead of stopping the run.
    """
    failed = {i: s["failed"] for i, s in enumerate(samples) if "failed" in s}
    good = [s for i, s in enumerate(samples) if i not in failed]
    batch: dict[str, Any] = dict(collate(good)) if good else {}
    batch["failed"] = failed
    return batch

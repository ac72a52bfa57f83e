"""DetDataPreprocessor: MMDetection 3.x's `model.data_preprocessor` (normalise, then pad).

In 3.x configs the data pipeline leaves pixels raw (no Normalize, no Pad) and the model
normalises the collated batch and pads it to a multiple of `pad_size_divisor`. This module
does that at the start of the detector's forward, for training, test and test-time
augmentation batches alike, so a 3.x config and the equivalent 2.x config (Normalize + Pad in
the pipeline) hand the backbone the same tensor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from detcli.errors import ModelError
from detcli.registry import MODELS
from detcli.structures import ImgMeta

WHERE = "model.data_preprocessor"


@MODELS.register()
class DetDataPreprocessor(nn.Module):
    """Channel order, `(img - mean) / std` and batch padding, with mmdet 3.3's config keys.

        Channel order: MMDetection decodes images as BGR and `bgr_to_rgb: true` (or `rgb_to_bgr:
        true`, the same channel swap in mmengine) flips them to RGB. detcli decodes RGB, so a swap
        keeps detcli's order and no swap (Caffe-style weights) flips to BGR: the model sees the
        channels it would see under mmdet with the same config, as with `Normalize.to_rgb`.

        Pixels outside each image's own extent (`pad_shape`, else `img_shape`, as the pipeline
        recorded it) are set to `pad_value` after normalising, because detcli's collate already
        zero-padded the raw batch; then the batch is padded bottom/right to a multiple of
        `pad_size_divisor`, and each image's `pad_shape` and `batch_input_shape` report the result
        (mmdet's `_get_pad_shape`). Metas are copied, never changed in place.

        It always normalises when `mean`/`std` are given: a pipeline that still holds a Normalize
        transform is normalised twice (config-level checks report that combination; nothing here
        skips a step). `(x - mean) * (1 / std)` in float32 matches detcli's Normalize bit for bit.
        `input_scale` (detcli's, for torchvision checkpoints) divides pixels by it first and then
        computes `(x - mean) / std` with a true division, torchvision's GeneralizedRCNNTransform
        order (255, with mean/std in 0-1 units), so its input tensor is matched bit for bit.
        `boxtype2tensor` and `non_blocking` are accepted and have no effect (boxes are always
        tensors; the engine moves batches), and so is `pad_mask` (instance masks keep the image's
    pixels: the padding below and right of it holds no mask). A non-zero `mask_pad_value`,
    `pad_seg` and `batch_augments` are refused.
    """

    NO_EFFECT_ARGS: ClassVar[dict[str, str]] = {
        "boxtype2tensor": "detcli's boxes are tensors already",
        "non_blocking": "batches are moved to the device by the engine",
        "pad_mask": "instance masks keep the image's pixels; the padding holds no mask",
        "seg_pad_value": "detcli has no segmentation maps",
    }

    def __init__(
        self,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        bgr_to_rgb: bool = False,
        rgb_to_bgr: bool = False,
        pad_size_divisor: int = 1,
        pad_value: float = 0,
        pad_mask: bool = False,
        mask_pad_value: int = 0,
        pad_seg: bool = False,
        seg_pad_value: int = 255,
        boxtype2tensor: bool = True,
        non_blocking: bool = False,
        batch_augments: list[dict[str, Any]] | None = None,
        input_scale: float | None = None,
    ):
        super().__init__()
        _check_unsupported(mask_pad_value, pad_seg, batch_augments)
        if bgr_to_rgb and rgb_to_bgr:
            raise ModelError(
                f"{WHERE}: bgr_to_rgb and rgb_to_bgr are both true; set at most one (both swap "
                "the channels, as in mmengine)."
            )
        if not isinstance(pad_size_divisor, int) or pad_size_divisor < 1:
            raise ModelError(
                f"{WHERE}.pad_size_divisor must be a positive integer (1: no padding), got "
                f"{pad_size_divisor!r}."
            )
        self.to_bgr = not (bgr_to_rgb or rgb_to_bgr)
        self.pad_size_divisor = pad_size_divisor
        self.pad_value = float(pad_value)
        self.input_scale = None if input_scale is None else float(input_scale)
        self.mean: Tensor | None
        self.inv_std: Tensor | None
        self.std: Tensor | None
        if mean is None and std is None:
            self.mean = self.inv_std = self.std = None
            return
        mean_np, std_np = _mean_std(mean, std)
        # Non-persistent: checkpoints hold the same keys with or without a preprocessor.
        self.register_buffer("mean", torch.tensor(mean_np).view(-1, 1, 1), persistent=False)
        self.register_buffer("inv_std", torch.tensor(1.0 / std_np).view(-1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std_np).view(-1, 1, 1), persistent=False)

    def forward(
        self,
        img: Tensor | Sequence[Tensor],
        img_metas: Sequence[ImgMeta] | Sequence[Sequence[ImgMeta]],
    ) -> tuple[Any, Any]:
        """The batch (or every TTA view) normalised and padded, with metas updated to match."""
        if isinstance(img, Tensor):
            return self.process(img, img_metas)  # type: ignore[arg-type]
        views = [
            self.process(view, metas)  # type: ignore[arg-type]
            for view, metas in zip(img, img_metas, strict=True)
        ]
        return [v[0] for v in views], [v[1] for v in views]

    def process(self, img: Tensor, img_metas: Sequence[ImgMeta]) -> tuple[Tensor, list[ImgMeta]]:
        """One (B, C, H, W) batch: channel order, normalise, pad; new metas with pad shapes."""
        if img.dim() != 4 or img.shape[0] != len(img_metas):
            raise ModelError(
                f"{WHERE}: expected a (B, C, H, W) batch with one meta per image; got a tensor "
                f"of shape {tuple(img.shape)} and {len(img_metas)} metas."
            )
        x = img.float()
        if self.to_bgr:
            x = x.flip(1)
        if self.mean is not None and self.inv_std is not None:
            if self.mean.shape[0] not in (1, x.shape[1]):
                raise ModelError(
                    f"{WHERE}: mean/std have {self.mean.shape[0]} values but the images have "
                    f"{x.shape[1]} channels; give one value per channel."
                )
            if self.input_scale is not None and self.std is not None:
                x = (x / self.input_scale - self.mean) / self.std
            else:
                x = (x - self.mean) * self.inv_std
        height, width = int(x.shape[-2]), int(x.shape[-1])
        extents = [_extent(meta, height, width) for meta in img_metas]
        if any(e != (height, width) for e in extents):
            if x is img:  # never write into the caller's batch
                x = x.clone()
            # collate zero-padded raw pixels; mmdet pads with pad_value after normalising.
            for i, (h, w) in enumerate(extents):
                x[i, :, h:, :] = self.pad_value
                x[i, :, :h, w:] = self.pad_value
        d = self.pad_size_divisor
        out_h, out_w = -(-height // d) * d, -(-width // d) * d
        if (out_h, out_w) != (height, width):
            x = F.pad(x, (0, out_w - width, 0, out_h - height), value=self.pad_value)
        channels = int(x.shape[1])
        metas: list[ImgMeta] = [
            {
                **meta,
                "pad_shape": (-(-h // d) * d, -(-w // d) * d, channels),
                "batch_input_shape": (out_h, out_w),
            }
            for meta, (h, w) in zip(img_metas, extents, strict=True)
        ]
        return x, metas

    def extra_repr(self) -> str:
        mean = None if self.mean is None else self.mean.flatten().tolist()
        return (
            f"mean={mean}, to_bgr={self.to_bgr}, pad_size_divisor={self.pad_size_divisor}, "
            f"pad_value={self.pad_value}"
        )


def _check_unsupported(mask_pad_value: int, pad_seg: bool, batch_augments: Any) -> None:
    if mask_pad_value != 0:
        raise ModelError(
            f"{WHERE}.mask_pad_value: the padding around a mask is background (0); "
            f"{mask_pad_value} is not supported, remove mask_pad_value."
        )
    if pad_seg:
        raise ModelError(
            f"{WHERE}.pad_seg: semantic segmentation maps are not supported; set pad_seg: false."
        )
    if batch_augments:
        raise ModelError(
            f"{WHERE}.batch_augments: batch augmentations (BatchSyncRandomResize, "
            "BatchFixedSizePad, ...) are not supported yet; remove batch_augments and resize "
            "in the data pipeline instead."
        )


def _mean_std(mean: Any, std: Any) -> tuple[np.ndarray, np.ndarray]:
    if mean is None or std is None:
        raise ModelError(
            f"{WHERE}: give both mean and std (or neither, for no normalisation); got "
            f"mean={mean}, std={std}."
        )
    mean_np = np.asarray(mean, dtype=np.float32).reshape(-1)
    std_np = np.asarray(std, dtype=np.float32).reshape(-1)
    if mean_np.size not in (1, 3) or std_np.size not in (1, 3) or (std_np == 0).any():
        raise ModelError(
            f"{WHERE}: mean and std need 1 or 3 values each, std non-zero; got mean={mean}, "
            f"std={std}."
        )
    return mean_np, std_np


def _extent(meta: ImgMeta, height: int, width: int) -> tuple[int, int]:
    """(h, w) of the image's own pixels in the collated batch (its tensor before collate)."""
    shape = meta.get("pad_shape") or meta.get("img_shape") or (height, width)
    return min(int(shape[0]), height), min(int(shape[1]), width)

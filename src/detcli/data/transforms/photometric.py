"""Normalize: subtract mean, divide by std (float32), in the channel order the weights expect."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from detcli.data.transforms.compose import Results
from detcli.errors import DataError
from detcli.registry import TRANSFORMS


@TRANSFORMS.register()
class Normalize:
    """`(img - mean) / std` per channel; `to_rgb: false` hands the model BGR, as mmdet would.

    MMDetection decodes images as BGR and `to_rgb: true` flips them to RGB. detcli decodes RGB
    directly, so `to_rgb: true` keeps the order and `to_rgb: false` (Caffe-style weights) flips
    to BGR: the model sees the same channels as under mmdet with the same config.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float], to_rgb: bool = True):
        if len(mean) != 3 or len(std) != 3 or any(s == 0 for s in std):
            raise DataError(
                f"Normalize needs 3 means and 3 non-zero stds; got mean={mean}, std={std}."
            )
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)
        self.to_rgb = to_rgb
        self._mean = torch.from_numpy(self.mean).view(3, 1, 1)
        self._inv_std = torch.from_numpy(1.0 / self.std).view(3, 1, 1)

    def __call__(self, results: Results) -> Results:
        img: torch.Tensor = results["img"]
        if not self.to_rgb:
            img = img.flip(0)
        # A fresh float copy, then in place: the source may be shared between TTA views.
        img = img.to(torch.float32, copy=True)
        img.sub_(self._mean).mul_(self._inv_std)
        results["img"] = img
        results["img_norm_cfg"] = {"mean": self.mean, "std": self.std, "to_rgb": self.to_rgb}
        return results

    def __repr__(self) -> str:
        return (
            f"Normalize(mean={self.mean.tolist()}, std={self.std.tolist()}, to_rgb={self.to_rgb})"
        )

"""Photometric steps: Normalize (mean, std, channel order) and PhotoMetricDistortion (jitter)."""

from __future__ import annotations

import random
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


def rgb_to_hsv(img: torch.Tensor) -> torch.Tensor:
    """(3, H, W) float RGB in [0, 255] -> HSV as OpenCV's float conversion: H in degrees
    [0, 360), S in [0, 1], V in [0, 255]."""
    r, g, b = img.unbind(0)
    v, _ = img.max(0)
    chroma = v - img.min(0).values
    s = torch.where(v > 0, chroma / v.clamp(min=1e-12), torch.zeros_like(v))
    safe = chroma.clamp(min=1e-12)
    h = torch.where(
        v == r,
        (g - b) / safe,
        torch.where(v == g, (b - r) / safe + 2, (r - g) / safe + 4),
    )
    h = torch.where(chroma > 0, (h * 60) % 360, torch.zeros_like(h))
    return torch.stack((h, s, v))


def hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    """The inverse of `rgb_to_hsv` (channel n = V - V S clamp(min(k, 4 - k), 0, 1))."""
    h, s, v = hsv.unbind(0)
    n = torch.tensor([5.0, 3.0, 1.0], dtype=hsv.dtype).view(3, 1, 1)
    k = (n + h / 60) % 6
    return v - v * s * torch.minimum(k, 4 - k).clamp(0, 1)


@TRANSFORMS.register()
class PhotoMetricDistortion:
    """MMDetection's colour jitter, each step with probability 0.5, on a float32 image.

    In order: brightness (+ delta), contrast (x alpha) either here or after the HSV steps
    (one coin), saturation (x factor), hue (+ degrees, wrapping), a random channel swap.
    Values are clamped to [0, 255] (and saturation to [0, 1]) after each step; mmdet leaves
    them unbounded, which no uint8 image can hold. The image becomes float32 (as in mmdet).
    """

    def __init__(
        self,
        brightness_delta: int = 32,
        contrast_range: Sequence[float] = (0.5, 1.5),
        saturation_range: Sequence[float] = (0.5, 1.5),
        hue_delta: int = 18,
    ):
        for name, rng in (
            ("contrast_range", contrast_range),
            ("saturation_range", saturation_range),
        ):
            if len(rng) != 2 or rng[0] > rng[1] or rng[0] < 0:
                raise DataError(
                    f"PhotoMetricDistortion: {name} must be [low, high] with 0 <= low <= high; "
                    f"got {list(rng)}."
                )
        self.brightness_delta = brightness_delta
        self.contrast_range = (float(contrast_range[0]), float(contrast_range[1]))
        self.saturation_range = (float(saturation_range[0]), float(saturation_range[1]))
        self.hue_delta = hue_delta

    def __call__(self, results: Results) -> Results:
        img = results["img"].to(torch.float32, copy=True)  # never modify a shared source
        coin = [random.random() < 0.5 for _ in range(6)]
        contrast_last, brightness, contrast, saturation, hue, swap = coin
        alpha = random.uniform(*self.contrast_range)
        if brightness:
            img.add_(random.uniform(-self.brightness_delta, self.brightness_delta)).clamp_(0, 255)
        if contrast and not contrast_last:
            img.mul_(alpha).clamp_(0, 255)
        if saturation or hue:
            hsv = rgb_to_hsv(img)
            if saturation:
                hsv[1].mul_(random.uniform(*self.saturation_range)).clamp_(0, 1)
            if hue:
                hsv[0].add_(random.uniform(-self.hue_delta, self.hue_delta)).remainder_(360)
            img = hsv_to_rgb(hsv).clamp_(0, 255)
        if contrast and contrast_last:
            img.mul_(alpha).clamp_(0, 255)
        if swap:
            img = img[torch.randperm(3)]
        results["img"] = img
        return results

    def __repr__(self) -> str:
        return (
            f"PhotoMetricDistortion(brightness_delta={self.brightness_delta}, "
            f"contrast_range={self.contrast_range}, saturation_range={self.saturation_range}, "
            f"hue_delta={self.hue_delta})"
        )

"""Resize, RandomFlip and Pad: geometric steps that move the boxes with the image.

Semantics follow MMDetection 2.x so configs port unchanged: `img_scale` is (w, h); with
`keep_ratio` it bounds the long and short edge (factor = min(long/L, short/S)); without, the
image goes to exactly (w, h). `scale_factor` records [w_scale, h_scale, w_scale, h_scale].
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
import torchvision.transforms.v2.functional as F
from torchvision.transforms import InterpolationMode
from torchvision.tv_tensors import BoundingBoxFormat

from detcli.data.transforms.boxes import box_fields, clip_and_drop
from detcli.data.transforms.compose import Results
from detcli.errors import DataError
from detcli.registry import TRANSFORMS

Scale = tuple[int, int]
Direction = Literal["horizontal", "vertical", "diagonal"]


def rescale_size(width: int, height: int, scale: Scale) -> tuple[int, int]:
    """(new_w, new_h) keeping the aspect ratio: long edge <= max(scale), short <= min(scale)."""
    factor = min(max(scale) / max(width, height), min(scale) / min(width, height))
    return int(width * factor + 0.5), int(height * factor + 0.5)


def _as_scales(img_scale: Sequence[int] | Sequence[Sequence[int]] | None) -> list[Scale]:
    if img_scale is None:
        return []
    if len(img_scale) == 2 and all(isinstance(v, (int, float)) for v in img_scale):
        return [(int(img_scale[0]), int(img_scale[1]))]  # type: ignore[arg-type]
    scales = [tuple(int(v) for v in s) for s in img_scale]  # type: ignore[union-attr]
    if not scales or any(len(s) != 2 for s in scales):
        raise DataError(f"img_scale must be [w, h] or a list of [w, h]; got {img_scale!r}.")
    return scales  # type: ignore[return-value]


@TRANSFORMS.register()
class Resize:
    """Resize the image (and its boxes) to one of `img_scale`, or to `results['scale']`."""

    def __init__(
        self,
        img_scale: Sequence[int] | Sequence[Sequence[int]] | None = None,
        multiscale_mode: Literal["range", "value"] = "range",
        ratio_range: Sequence[float] | None = None,
        keep_ratio: bool = True,
        bbox_clip_border: bool = True,
        interpolation: Literal["bilinear", "nearest", "bicubic"] = "bilinear",
    ):
        self.img_scale = _as_scales(img_scale)
        if ratio_range is not None and len(self.img_scale) != 1:
            raise DataError("Resize: ratio_range needs exactly one img_scale to multiply.")
        self.multiscale_mode = multiscale_mode
        self.ratio_range = tuple(ratio_range) if ratio_range is not None else None
        self.keep_ratio = keep_ratio
        self.bbox_clip_border = bbox_clip_border
        self.interpolation = InterpolationMode(interpolation)

    def _random_scale(self) -> Scale:
        if not self.img_scale:
            raise DataError(
                "Resize has no img_scale and no scale was set by MultiScaleFlipAug: give "
                "`img_scale: [w, h]` to Resize or put it inside MultiScaleFlipAug."
            )
        if self.ratio_range is not None:
            ratio = random.uniform(*self.ratio_range)
            w, h = self.img_scale[0]
            return int(w * ratio), int(h * ratio)
        if len(self.img_scale) == 1:
            return self.img_scale[0]
        if self.multiscale_mode == "value":
            return random.choice(self.img_scale)
        longs = [max(s) for s in self.img_scale]
        shorts = [min(s) for s in self.img_scale]
        return random.randint(min(longs), max(longs)), random.randint(min(shorts), max(shorts))

    def __call__(self, results: Results) -> Results:
        scale = results.get("scale")
        if scale is None:
            scale = results["scale"] = self._random_scale()
        img: torch.Tensor = results["img"]
        h, w = int(img.shape[-2]), int(img.shape[-1])
        new_w, new_h = rescale_size(w, h, scale) if self.keep_ratio else (scale[0], scale[1])
        if (new_w, new_h) != (w, h):
            # antialias: downscaling without it aliases thin structures badly
            img = F.resize_image(img, [new_h, new_w], self.interpolation, antialias=True)
        sf = np.array([new_w / w, new_h / h] * 2, dtype=np.float32)
        results.update(
            img=img,
            img_shape=(new_h, new_w, int(img.shape[0])),
            pad_shape=(new_h, new_w, int(img.shape[0])),
            scale_factor=sf,
            keep_ratio=self.keep_ratio,
        )
        factor = torch.from_numpy(sf)
        for key in box_fields(results):
            results[key] = results[key] * factor
        clip_and_drop(results, new_h, new_w, clip=self.bbox_clip_border)
        return results

    def __repr__(self) -> str:
        return (
            f"Resize(img_scale={self.img_scale}, multiscale_mode={self.multiscale_mode!r}, "
            f"ratio_range={self.ratio_range}, keep_ratio={self.keep_ratio})"
        )


@TRANSFORMS.register()
class RandomFlip:
    """Flip image and boxes with probability `flip_ratio` (per direction when lists are given)."""

    def __init__(
        self,
        flip_ratio: float | Sequence[float] | None = None,
        direction: Direction | Sequence[Direction] = "horizontal",
    ):
        directions = [direction] if isinstance(direction, str) else list(direction)
        if isinstance(flip_ratio, (list, tuple)):
            if len(flip_ratio) != len(directions) or sum(flip_ratio) > 1:
                raise DataError(
                    "RandomFlip: a list flip_ratio needs one probability per direction, "
                    f"summing to at most 1; got flip_ratio={flip_ratio}, direction={direction}."
                )
            self.choices = list(zip(directions, flip_ratio, strict=True))
        elif flip_ratio is not None:
            if not 0 <= flip_ratio <= 1:
                raise DataError(f"RandomFlip: flip_ratio must be in [0, 1]; got {flip_ratio}.")
            self.choices = [(d, float(flip_ratio) / len(directions)) for d in directions]
        else:
            self.choices = []
        self.flip_ratio = flip_ratio
        self.direction = direction

    def _choose(self) -> str | None:
        roll = random.random()
        for direction, p in self.choices:
            if roll < p:
                return direction
            roll -= p
        return None

    def __call__(self, results: Results) -> Results:
        if "flip" not in results:  # MultiScaleFlipAug sets flip and flip_direction itself
            direction = self._choose()
            results["flip"] = direction is not None
            results["flip_direction"] = direction
        if not results["flip"]:
            results.setdefault("flip_direction", None)
            return results
        direction = results["flip_direction"] or "horizontal"
        img: torch.Tensor = results["img"]
        h, w = int(img.shape[-2]), int(img.shape[-1])
        dims = {"horizontal": [-1], "vertical": [-2], "diagonal": [-2, -1]}[direction]
        results["img"] = img.flip(dims)
        for key in box_fields(results):
            boxes = results[key]
            if direction in ("horizontal", "diagonal"):
                boxes = F.horizontal_flip_bounding_boxes(boxes, BoundingBoxFormat.XYXY, (h, w))
            if direction in ("vertical", "diagonal"):
                boxes = F.vertical_flip_bounding_boxes(boxes, BoundingBoxFormat.XYXY, (h, w))
            results[key] = boxes
        return results

    def __repr__(self) -> str:
        return f"RandomFlip(flip_ratio={self.flip_ratio}, direction={self.direction!r})"


@TRANSFORMS.register()
class Pad:
    """Pad bottom/right to a fixed (h, w) `size`, a multiple of `size_divisor`, or a square."""

    def __init__(
        self,
        size: Sequence[int] | None = None,
        size_divisor: int | None = None,
        pad_to_square: bool = False,
        pad_val: float | dict[str, float] = 0,
    ):
        if sum(x is not None and x is not False for x in (size, size_divisor, pad_to_square)) != 1:
            raise DataError("Pad needs exactly one of size, size_divisor or pad_to_square.")
        self.size = tuple(size) if size is not None else None
        self.size_divisor = size_divisor
        self.pad_to_square = pad_to_square
        self.pad_val = float(pad_val.get("img", 0) if isinstance(pad_val, dict) else pad_val)

    def __call__(self, results: Results) -> Results:
        img: torch.Tensor = results["img"]
        c, h, w = (int(s) for s in img.shape)
        if self.size is not None:
            ph, pw = max(h, self.size[0]), max(w, self.size[1])
        elif self.pad_to_square:
            ph = pw = max(h, w)
        else:
            d = self.size_divisor or 1
            ph, pw = -(-h // d) * d, -(-w // d) * d
        if (ph, pw) != (h, w):
            padded = img.new_full((c, ph, pw), self.pad_val)
            padded[:, :h, :w] = img
            img = padded
        results.update(
            img=img,
            pad_shape=(ph, pw, c),
            pad_fixed_size=self.size,
            pad_size_divisor=self.size_divisor,
        )
        return results

    def __repr__(self) -> str:
        return f"Pad(size={self.size}, size_divisor={self.size_divisor}, pad_val={self.pad_val})"

"""Resize and RandomFlip: geometric steps that move the boxes (and masks) with the image.

Semantics follow MMDetection 2.x so configs port unchanged: `img_scale` is (w, h); with
`keep_ratio` it bounds the long and short edge (factor = min(long/L, short/S)); without, the
image goes to exactly (w, h). `scale_factor` records [w_scale, h_scale, w_scale, h_scale].
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import torch
import torchvision.transforms.v2.functional as F
from torchvision.transforms import InterpolationMode
from torchvision.tv_tensors import BoundingBoxFormat

from detcli.data.transforms.boxes import box_fields, clip_and_drop, mask_fields
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
    raw: list[Any] = list(img_scale)
    pairs = [raw] if len(raw) == 2 and all(isinstance(v, (int, float)) for v in raw) else raw
    if not pairs or any(not isinstance(p, Sequence) or len(p) != 2 for p in pairs):
        raise DataError(f"img_scale must be [w, h] or a list of [w, h]; got {img_scale!r}.")
    scales = [(int(w), int(h)) for w, h in pairs]
    if any(v <= 0 for s in scales for v in s):
        raise DataError(f"Resize: a scale must be positive [w, h] pixels; got {img_scale!r}.")
    return scales


RESIZE_2X_KEYS = ("img_scale", "multiscale_mode", "ratio_range", "bbox_clip_border")
RESIZE_3X_KEYS = ("scale", "scale_factor", "clip_object_border")


def _resize_spelling(given_2x: list[str], given_3x: list[str]) -> str:
    """'2.x' or '3.x' from the keys a Resize was given; DataError when it mixes them."""
    if given_2x and given_3x:
        raise DataError(
            f"Resize mixes MMDetection 2.x keys ({', '.join(given_2x)}) with 3.x keys "
            f"({', '.join(given_3x)}). In a 3.x pipeline write `scale: [w, h]` (RandomResize or "
            f"RandomChoiceResize for several scales, `clip_object_border` for bbox_clip_border); "
            f"in a 2.x pipeline write `img_scale` (with multiscale_mode / ratio_range)."
        )
    return "3.x" if given_3x else "2.x"


def _pair(value: float | Sequence[float], name: str) -> tuple[float, float]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value), float(value)
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return float(value[0]), float(value[1])
    raise DataError(f"Resize: {name} must be a number or [w, h]; got {value!r}.")


@TRANSFORMS.register()
class Resize:
    """Resize the image (and its boxes), in MMDetection 2.x or 3.x (mmcv 2.x) spelling.

    2.x: `img_scale` (one or several [w, h]; or `results['scale']` from MultiScaleFlipAug),
    `multiscale_mode`, `ratio_range`, `bbox_clip_border`; `keep_ratio` defaults to true.
    3.x: `scale` ([w, h] or one int) or `scale_factor` (a number or [w, h] factors; `scale`
    wins when both are given), `clip_object_border`; `keep_ratio` defaults to false, as in
    mmcv 2.x. Mixing the two spellings is a DataError. `backend` is accepted for 3.x configs
    and has no effect (torchvision resizes).
    """

    def __init__(
        self,
        img_scale: Sequence[int] | Sequence[Sequence[int]] | None = None,
        multiscale_mode: Literal["range", "value"] | None = None,
        ratio_range: Sequence[float] | None = None,
        keep_ratio: bool | None = None,
        bbox_clip_border: bool | None = None,
        interpolation: Literal["bilinear", "nearest", "bicubic"] = "bilinear",
        scale: int | Sequence[int] | None = None,
        scale_factor: float | Sequence[float] | None = None,
        clip_object_border: bool | None = None,
        backend: Literal["cv2", "pillow"] = "cv2",
    ):
        given = dict(
            img_scale=img_scale, multiscale_mode=multiscale_mode, ratio_range=ratio_range,
            bbox_clip_border=bbox_clip_border, scale=scale, scale_factor=scale_factor,
            clip_object_border=clip_object_border,
        )  # fmt: skip
        self.spelling = _resize_spelling(
            [k for k in RESIZE_2X_KEYS if given[k] is not None],
            [k for k in RESIZE_3X_KEYS if given[k] is not None],
        )
        self.img_scale = _as_scales(img_scale)
        if ratio_range is not None and len(self.img_scale) != 1:
            raise DataError("Resize: ratio_range needs exactly one img_scale to multiply.")
        self.multiscale_mode = multiscale_mode or "range"
        self.ratio_range = tuple(ratio_range) if ratio_range is not None else None
        # each spelling keeps its own default: mmdet 2.x True, mmcv 2.x False
        self.keep_ratio = (self.spelling == "2.x") if keep_ratio is None else keep_ratio
        clip = bbox_clip_border if self.spelling == "2.x" else clip_object_border
        self.bbox_clip_border = True if clip is None else clip
        self.interpolation = InterpolationMode(interpolation)
        self.scale: Scale | None = None
        if isinstance(scale, Sequence):
            pair = _as_scales(scale)
            if len(pair) != 1:
                raise DataError(
                    f"Resize: scale must be [w, h] or one number; got {scale!r}. For one of "
                    f"several scales use RandomChoiceResize (or RandomResize for a range)."
                )
            self.scale = pair[0]
        elif scale is not None:  # one number: a square
            self.scale = (int(scale), int(scale))
        self.scale_factor = _pair(scale_factor, "scale_factor") if scale_factor else None
        self.backend = backend

    def _random_scale(self) -> Scale:
        if not self.img_scale:
            raise DataError(
                "Resize has no img_scale and no scale was set by MultiScaleFlipAug: give "
                "`img_scale: [w, h]` to Resize or put it inside MultiScaleFlipAug (3.x: give "
                "`scale: [w, h]` or `scale_factor`)."
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

    def _target_scale(self, results: Results, w: int, h: int) -> Scale:
        """This call's scale: a 3.x Resize uses its own; 2.x takes MultiScaleFlipAug's if set."""
        if self.spelling == "3.x" and self.scale is not None:
            return self.scale
        if self.spelling == "3.x" and self.scale_factor is not None:
            fw, fh = self.scale_factor  # mmcv's _scale_size
            return int(w * fw + 0.5), int(h * fh + 0.5)
        scale = results.get("scale")
        return self._random_scale() if scale is None else scale

    def __call__(self, results: Results) -> Results:
        img: torch.Tensor = results["img"]
        h, w = int(img.shape[-2]), int(img.shape[-1])
        scale = results["scale"] = self._target_scale(results, w, h)
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
        for key in mask_fields(results):  # to the image's size: x and y scale as the boxes'
            results[key] = results[key].resize((new_h, new_w))
        clip_and_drop(results, new_h, new_w, clip=self.bbox_clip_border)
        return results

    def __repr__(self) -> str:
        if self.spelling == "3.x":
            return (
                f"Resize(scale={self.scale}, scale_factor={self.scale_factor}, "
                f"keep_ratio={self.keep_ratio}, clip_object_border={self.bbox_clip_border})"
            )
        return (
            f"Resize(img_scale={self.img_scale}, multiscale_mode={self.multiscale_mode!r}, "
            f"ratio_range={self.ratio_range}, keep_ratio={self.keep_ratio})"
        )


@TRANSFORMS.register()
class RandomFlip:
    """Flip image and boxes with probability `prob` (3.x) or `flip_ratio` (2.x).

    A list of probabilities gives one per direction; one number is shared by the directions.
    2.x: a flip decision already in the results (MultiScaleFlipAug's) is kept. 3.x (`prob`):
    each call decides anew, as mmcv 2.x does (TestTimeAug uses prob 1.0 and 0.0 views).
    """

    def __init__(
        self,
        flip_ratio: float | Sequence[float] | None = None,
        direction: Direction | Sequence[Direction] = "horizontal",
        prob: float | Sequence[float] | None = None,
    ):
        if flip_ratio is not None and prob is not None:
            raise DataError(
                f"RandomFlip has both `flip_ratio: {flip_ratio}` (MMDetection 2.x) and "
                f"`prob: {prob}` (3.x); keep one (`prob` in a 3.x pipeline)."
            )
        ratio = prob if prob is not None else flip_ratio
        name = "prob" if prob is not None else "flip_ratio"
        directions = [direction] if isinstance(direction, str) else list(direction)
        if isinstance(ratio, Sequence):
            if len(ratio) != len(directions) or sum(ratio) > 1:
                raise DataError(
                    f"RandomFlip: a list {name} needs one probability per direction, "
                    f"summing to at most 1; got {name}={ratio}, direction={direction}."
                )
            self.choices = list(zip(directions, ratio, strict=True))
        elif ratio is not None:
            if not 0 <= ratio <= 1:
                raise DataError(f"RandomFlip: {name} must be in [0, 1]; got {ratio}.")
            self.choices = [(d, float(ratio) / len(directions)) for d in directions]
        else:
            self.choices = []
        self.flip_ratio = ratio
        self.decides_itself = prob is not None
        self.direction = direction

    def _choose(self) -> str | None:
        roll = random.random()
        for direction, p in self.choices:
            if roll < p:
                return direction
            roll -= p
        return None

    def __call__(self, results: Results) -> Results:
        if self.decides_itself or "flip" not in results:
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
        for key in mask_fields(results):
            results[key] = results[key].flip(direction)
        return results

    def __repr__(self) -> str:
        name = "prob" if self.decides_itself else "flip_ratio"
        return f"RandomFlip({name}={self.flip_ratio}, direction={self.direction!r})"

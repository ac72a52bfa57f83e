"""Mosaic and MixUp (MMDetection 3.x): transforms that combine several images.

Both need `results['mix_results']`, the other images' results, which `MultiImageMixDataset`
fetches through each transform's `get_indexes(dataset)`.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Sequence
from typing import Any

import torch
import torchvision.transforms.v2.functional as F
from torchvision.transforms import InterpolationMode

from detcli.data.transforms.affine import keep_inside
from detcli.data.transforms.boxes import LABELS_OF, box_fields, refuse_masks
from detcli.data.transforms.compose import Results
from detcli.errors import DataError
from detcli.registry import TRANSFORMS

LOCATIONS = ("top_left", "top_right", "bottom_left", "bottom_right")


def _scale_wh(value: Sequence[int], owner: str) -> tuple[int, int]:
    if len(value) != 2 or not all(int(v) > 0 for v in value):
        raise DataError(f"{owner}: img_scale is [w, h] positive pixels; got {value!r}.")
    return int(value[0]), int(value[1])


def _mix_results(results: Results, owner: str, count: int) -> list[Results]:
    mixed = results.get("mix_results")
    if not isinstance(mixed, list) or len(mixed) != count:
        raise DataError(
            f"{owner} combines {count + 1} images and found "
            f"{0 if mixed is None else len(mixed)} others: put it in the `pipeline` of a "
            f"MultiImageMixDataset (which fetches them), not in a dataset's own pipeline."
        )
    return mixed


def _resize(img: torch.Tensor, height: int, width: int) -> torch.Tensor:
    height, width = max(height, 1), max(width, 1)  # a very thin image keeps one pixel row
    if (height, width) == (int(img.shape[-2]), int(img.shape[-1])):
        return img
    # antialias: the mosaic shrinks images by up to the data's size over img_scale
    resized: torch.Tensor = F.resize_image(
        img, [height, width], InterpolationMode.BILINEAR, antialias=True
    )
    return resized


def _concat_fields(
    results: Results, parts: list[Results], boxes: list[dict[str, torch.Tensor]]
) -> None:
    """Set every box field (and its labels) of `results` to the parts' rows, in order."""
    for key in box_fields(results):
        rows = [b[key] for b in boxes]
        results[key] = torch.cat(rows).reshape(-1, 4) if rows else results[key]
        labels = LABELS_OF.get(key)
        if labels in results:
            results[labels] = torch.cat([p[labels] for p in parts])


@TRANSFORMS.register()
class Mosaic:
    """Four images around a random centre on a (2h, 2w) canvas of `pad_val`; boxes follow.

    The first is the dataset's image, the other three come from `mix_results`. Each is resized
    to fit `img_scale` (w, h) keeping its ratio, placed in its quadrant against the centre
    (drawn in `center_ratio_range` times img_scale) and cut at the canvas. Boxes are scaled,
    moved with their image, clipped to the canvas (`bbox_clip_border`) and dropped once
    outside it. With probability 1 - `prob` the image passes unchanged.
    """

    def __init__(
        self,
        img_scale: Sequence[int] = (640, 640),
        center_ratio_range: Sequence[float] = (0.5, 1.5),
        bbox_clip_border: bool = True,
        pad_val: float = 114.0,
        prob: float = 1.0,
    ):
        if not 0 <= prob <= 1:
            raise DataError(f"Mosaic: prob is a probability in [0, 1]; got {prob!r}.")
        self.img_scale = _scale_wh(img_scale, "Mosaic")
        if len(center_ratio_range) != 2 or not 0 < center_ratio_range[0] <= center_ratio_range[1]:
            raise DataError(
                f"Mosaic: center_ratio_range is [min, max] with 0 < min <= max (fractions of "
                f"img_scale); got {center_ratio_range!r}."
            )
        self.center_ratio_range = (float(center_ratio_range[0]), float(center_ratio_range[1]))
        self.bbox_clip_border = bbox_clip_border
        self.pad_val = float(pad_val)
        self.prob = float(prob)

    def get_indexes(self, dataset: Any) -> list[int]:
        """Three random indices of `dataset`: the other images of the mosaic."""
        return [random.randrange(len(dataset)) for _ in range(3)]

    def _combine(
        self, loc: str, center: tuple[int, int], wh: tuple[int, int]
    ) -> tuple[tuple[int, int, int, int], tuple[int, int, int, int]]:
        """(paste box on the canvas, crop box in the resized image), as mmdet's _mosaic_combine."""
        (cx, cy), (w, h) = center, wh
        sw, sh = 2 * self.img_scale[0], 2 * self.img_scale[1]
        if loc == "top_left":
            x1, y1, x2, y2 = max(cx - w, 0), max(cy - h, 0), cx, cy
            crop = (w - (x2 - x1), h - (y2 - y1), w, h)
        elif loc == "top_right":
            x1, y1, x2, y2 = cx, max(cy - h, 0), min(cx + w, sw), cy
            crop = (0, h - (y2 - y1), min(w, x2 - x1), h)
        elif loc == "bottom_left":
            x1, y1, x2, y2 = max(cx - w, 0), cy, cx, min(sh, cy + h)
            crop = (w - (x2 - x1), 0, w, min(y2 - y1, h))
        else:
            x1, y1, x2, y2 = cx, cy, min(cx + w, sw), min(sh, cy + h)
            crop = (0, 0, min(w, x2 - x1), min(y2 - y1, h))
        return (x1, y1, x2, y2), crop

    def __call__(self, results: Results) -> Results:
        refuse_masks(results, "Mosaic")  # checked before the draw: the error comes at once
        if random.uniform(0, 1) > self.prob:
            return results
        others = _mix_results(results, "Mosaic", 3)
        img: torch.Tensor = results["img"]
        sw, sh = self.img_scale
        canvas = torch.full((int(img.shape[0]), 2 * sh, 2 * sw), self.pad_val, dtype=img.dtype)
        center = (
            int(random.uniform(*self.center_ratio_range) * sw),
            int(random.uniform(*self.center_ratio_range) * sh),
        )
        parts = [results, *others]
        moved: list[dict[str, torch.Tensor]] = []
        for loc, part in zip(LOCATIONS, parts, strict=True):
            part_img: torch.Tensor = part["img"]
            h_i, w_i = int(part_img.shape[-2]), int(part_img.shape[-1])
            ratio = min(sh / h_i, sw / w_i)
            part_img = _resize(part_img, int(h_i * ratio), int(w_i * ratio))
            wh = (int(part_img.shape[-1]), int(part_img.shape[-2]))
            (x1p, y1p, x2p, y2p), (x1c, y1c, x2c, y2c) = self._combine(loc, center, wh)
            canvas[:, y1p:y2p, x1p:x2p] = part_img[:, y1c:y2c, x1c:x2c]
            shift = torch.tensor([x1p - x1c, y1p - y1c] * 2, dtype=torch.float32)
            moved.append(
                {
                    key: part.get(key, torch.zeros((0, 4))).float().reshape(-1, 4) * ratio + shift
                    for key in box_fields(results)
                }
            )
        _concat_fields(results, parts, moved)
        keep_inside(results, 2 * sh, 2 * sw, self.bbox_clip_border)
        shape = (2 * sh, 2 * sw, int(img.shape[0]))
        results.update(img=canvas, img_shape=shape, pad_shape=shape)
        return results

    def __repr__(self) -> str:
        return (
            f"Mosaic(img_scale={self.img_scale}, center_ratio_range={self.center_ratio_range}, "
            f"pad_val={self.pad_val}, prob={self.prob})"
        )


@TRANSFORMS.register()
class MixUp:
    """Blend the image 50/50 with another one, resized, jittered, maybe flipped; both boxes kept.

    The other image (from `mix_results`) is fitted into `img_scale` (w, h) keeping its ratio,
    scaled by a factor drawn in `ratio_range`, flipped horizontally with probability
    `flip_ratio`, then a window of this image's size is cut at a random place. Its boxes go
    the same way (clipped when `bbox_clip_border`), are appended after this image's boxes, and
    any box left outside is dropped. `get_indexes` draws up to `max_iters` times for an image
    that has boxes.
    """

    def __init__(
        self,
        img_scale: Sequence[int] = (640, 640),
        ratio_range: Sequence[float] = (0.5, 1.5),
        flip_ratio: float = 0.5,
        pad_val: float = 114.0,
        max_iters: int = 15,
        bbox_clip_border: bool = True,
    ):
        self.dynamic_scale = _scale_wh(img_scale, "MixUp")
        if len(ratio_range) != 2 or not 0 < ratio_range[0] <= ratio_range[1]:
            raise DataError(
                f"MixUp: ratio_range is [min, max] with 0 < min <= max; got {ratio_range!r}."
            )
        if max_iters < 1:
            raise DataError(f"MixUp: max_iters must be at least 1; got {max_iters!r}.")
        self.ratio_range = (float(ratio_range[0]), float(ratio_range[1]))
        self.flip_ratio = float(flip_ratio)
        self.pad_val = float(pad_val)
        self.max_iters = int(max_iters)
        self.bbox_clip_border = bbox_clip_border

    def get_indexes(self, dataset: Any) -> int:
        """A random index of `dataset` whose image has boxes (the last drawn after max_iters)."""
        index = 0
        for _ in range(self.max_iters):
            index = random.randrange(len(dataset))
            sample = dataset[index]
            if sample is not None and len(sample.get("gt_bboxes", ())) != 0:
                break
        return index

    def __call__(self, results: Results) -> Results:
        refuse_masks(results, "MixUp")
        (other,) = _mix_results(results, "MixUp", 1)
        if len(other.get("gt_bboxes", ())) == 0:
            return results
        other_img: torch.Tensor = other["img"]
        jitter = random.uniform(*self.ratio_range)
        # mmdet 3.3 flips when uniform(0, 1) > flip_ratio; the documented meaning (flip with
        # probability flip_ratio) is kept here: the same for the usual 0.5
        flip = random.uniform(0, 1) < self.flip_ratio
        c = int(other_img.shape[0])
        sw, sh = self.dynamic_scale
        # 1-2. fit into img_scale keeping the ratio, pasted top-left on a pad_val canvas
        ratio = min(sh / int(other_img.shape[-2]), sw / int(other_img.shape[-1]))
        fitted = _resize(
            other_img, int(other_img.shape[-2] * ratio), int(other_img.shape[-1] * ratio)
        )
        canvas = torch.full((c, sh, sw), self.pad_val, dtype=other_img.dtype)
        canvas[:, : fitted.shape[-2], : fitted.shape[-1]] = fitted
        # 3. scale jitter
        canvas = _resize(canvas, int(sh * jitter), int(sw * jitter))
        ratio *= jitter
        if flip:  # 4.
            canvas = canvas.flip(-1)
        # 5. a window of this image's size at a random place of the (padded) jittered canvas
        img: torch.Tensor = results["img"]
        origin_h, origin_w = int(canvas.shape[-2]), int(canvas.shape[-1])
        target_h, target_w = int(img.shape[-2]), int(img.shape[-1])
        padded = torch.full(
            (c, max(origin_h, target_h), max(origin_w, target_w)), self.pad_val, dtype=img.dtype
        )
        padded[:, :origin_h, :origin_w] = canvas.to(img.dtype)
        y_off = random.randint(0, padded.shape[-2] - target_h)
        x_off = random.randint(0, padded.shape[-1] - target_w)
        window = padded[:, y_off : y_off + target_h, x_off : x_off + target_w]
        # 6-7. the other image's boxes: scaled, clipped to the canvas, flipped, moved
        moved: dict[str, torch.Tensor] = {}
        for key in box_fields(results):
            boxes = other.get(key, torch.zeros((0, 4))).float().reshape(-1, 4) * ratio
            if self.bbox_clip_border:
                boxes = torch.stack(
                    (
                        boxes[:, 0].clamp(0, origin_w),
                        boxes[:, 1].clamp(0, origin_h),
                        boxes[:, 2].clamp(0, origin_w),
                        boxes[:, 3].clamp(0, origin_h),
                    ),
                    dim=1,
                )
            if flip:
                boxes = torch.stack(
                    (origin_w - boxes[:, 2], boxes[:, 1], origin_w - boxes[:, 0], boxes[:, 3]),
                    dim=1,
                )
            moved[key] = boxes - torch.tensor([x_off, y_off] * 2, dtype=torch.float32)
        # 8. blend 50/50 and keep both images' boxes
        mixed = 0.5 * img.float() + 0.5 * window.float()
        own = {key: results[key].float().reshape(-1, 4) for key in box_fields(results)}
        _concat_fields(results, [copy.copy(results), other], [own, moved])
        keep_inside(results, target_h, target_w, self.bbox_clip_border)
        results["img"] = mixed.to(img.dtype)  # uint8: truncated, as mmdet's astype
        return results

    def __repr__(self) -> str:
        return (
            f"MixUp(img_scale={self.dynamic_scale}, ratio_range={self.ratio_range}, "
            f"flip_ratio={self.flip_ratio}, pad_val={self.pad_val}, max_iters={self.max_iters}, "
            f"bbox_clip_border={self.bbox_clip_border})"
        )

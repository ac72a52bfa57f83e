"""RandomCrop (MMDetection 3.x semantics): cut a window, move the boxes, drop those left outside."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Literal

import torch

from detcli.data.transforms.boxes import MASKS_OF, box_fields, keep_rows, mask_fields
from detcli.data.transforms.compose import Results
from detcli.errors import DataError
from detcli.registry import TRANSFORMS

CropType = Literal["absolute", "absolute_range", "relative", "relative_range"]


@TRANSFORMS.register()
class RandomCrop:
    """Crop a random (h, w) window; boxes are shifted, clipped and dropped once outside it.

    `crop_size` is (h, w): pixels for `absolute` (capped at the image) and `absolute_range`
    (h and w drawn in [crop_size[0], min(side, crop_size[1])]); fractions of the image for
    `relative` and `relative_range` (each drawn in [crop_size[i], 1]). A crop that keeps no
    box is rejected (None: the dataset draws another image) unless `allow_negative_crop`.
    Instance masks are cut to the window and dropped with their boxes; `recompute_bbox` then
    sets each box to its cropped mask's bounds (without masks it has no effect).
    """

    def __init__(
        self,
        crop_size: Sequence[int] | Sequence[float],
        crop_type: CropType = "absolute",
        allow_negative_crop: bool = False,
        recompute_bbox: bool = False,
        bbox_clip_border: bool = True,
    ):
        if crop_type not in ("absolute", "absolute_range", "relative", "relative_range"):
            raise DataError(
                f"RandomCrop: crop_type {crop_type!r} is not one of absolute, absolute_range, "
                f"relative, relative_range."
            )
        if len(crop_size) != 2:
            raise DataError(f"RandomCrop: crop_size must be [h, w]; got {crop_size!r}.")
        if crop_type.startswith("absolute"):
            if not all(isinstance(v, int) and v > 0 for v in crop_size):
                raise DataError(
                    f"RandomCrop: an {crop_type} crop_size is [h, w] in whole pixels > 0; "
                    f"got {crop_size!r}."
                )
            if crop_type == "absolute_range" and crop_size[0] > crop_size[1]:
                raise DataError(
                    f"RandomCrop: absolute_range crop_size is [min, max]; got {crop_size!r}."
                )
        elif not all(0 < v <= 1 for v in crop_size):
            raise DataError(
                f"RandomCrop: a {crop_type} crop_size is [h, w] fractions in (0, 1]; "
                f"got {crop_size!r}."
            )
        self.crop_size = tuple(crop_size)
        self.crop_type = crop_type
        self.allow_negative_crop = allow_negative_crop
        self.recompute_bbox = recompute_bbox
        self.bbox_clip_border = bbox_clip_border

    def _crop_hw(self, h: int, w: int) -> tuple[int, int]:
        """The absolute (crop_h, crop_w) for an h x w image, as mmdet 3.x draws it."""
        a, b = self.crop_size
        if self.crop_type == "absolute":
            return min(int(a), h), min(int(b), w)
        if self.crop_type == "absolute_range":
            lo, hi = int(a), int(b)
            return random.randint(min(h, lo), min(h, hi)), random.randint(min(w, lo), min(w, hi))
        if self.crop_type == "relative":
            return int(h * a + 0.5), int(w * b + 0.5)
        rh, rw = a + random.random() * (1 - a), b + random.random() * (1 - b)
        return int(h * rh + 0.5), int(w * rw + 0.5)

    def __call__(self, results: Results) -> Results | None:
        img: torch.Tensor = results["img"]
        c, h, w = (int(s) for s in img.shape)
        crop_h, crop_w = self._crop_hw(h, w)
        y0 = random.randint(0, max(h - crop_h, 0))
        x0 = random.randint(0, max(w - crop_w, 0))
        shift = torch.tensor([x0, y0, x0, y0], dtype=torch.float32)
        window = (x0, y0, x0 + crop_w, y0 + crop_h)
        for key in mask_fields(results):
            results[key] = results[key].crop(window)
        kept: dict[str, torch.Tensor] = {}
        for key in box_fields(results):
            boxes = results[key] - shift
            if self.bbox_clip_border:
                boxes = torch.stack(
                    (
                        boxes[:, 0].clamp(0, crop_w),
                        boxes[:, 1].clamp(0, crop_h),
                        boxes[:, 2].clamp(0, crop_w),
                        boxes[:, 3].clamp(0, crop_h),
                    ),
                    dim=1,
                )
            # mmdet's HorizontalBoxes.is_inside: some of the box lies inside the window
            inside = (
                (boxes[:, 0] < crop_w)
                & (boxes[:, 1] < crop_h)
                & (boxes[:, 2] > 0)
                & (boxes[:, 3] > 0)
            )
            kept[key] = inside
            results[key] = boxes
            keep_rows(results, key, inside)
            masks = MASKS_OF.get(key)
            if self.recompute_bbox and masks in results:
                results[key] = results[masks].bounding_boxes()
        # mmdet 3.x keeps crowd boxes among gt_bboxes (flagged), so they count as boxes too
        if kept and not any(bool(k.any()) for k in kept.values()) and not self.allow_negative_crop:
            return None
        results["img"] = img[:, y0 : y0 + crop_h, x0 : x0 + crop_w]
        results["img_shape"] = (crop_h, crop_w, c)
        results["pad_shape"] = (crop_h, crop_w, c)
        return results

    def __repr__(self) -> str:
        return (
            f"RandomCrop(crop_size={self.crop_size}, crop_type={self.crop_type!r}, "
            f"allow_negative_crop={self.allow_negative_crop}, "
            f"bbox_clip_border={self.bbox_clip_border})"
        )

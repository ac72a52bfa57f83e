"""RandomAffine (MMDetection 3.x): rotate, scale, shear and translate image and boxes at once."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

import torch
import torch.nn.functional as nnf

from detcli.data.transforms.boxes import LABELS_OF, box_fields, refuse_masks
from detcli.data.transforms.compose import Results
from detcli.errors import DataError
from detcli.registry import TRANSFORMS


def warp_image(
    img: torch.Tensor, matrix: torch.Tensor, height: int, width: int, fill: Sequence[float]
) -> torch.Tensor:
    """`img` (C, H, W) warped by the 3x3 `matrix` (source -> output pixels) onto height x width.

    As cv2.warpPerspective: pixel centres sit at integer coordinates, output pixels that map
    outside the source get `fill`, sampling is bilinear.
    """
    c, src_h, src_w = (int(s) for s in img.shape)
    inverse = torch.linalg.inv(matrix.double())
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=torch.float64),
        torch.arange(width, dtype=torch.float64),
        indexing="ij",
    )
    points = torch.stack((xs, ys, torch.ones_like(xs)), dim=-1) @ inverse.T
    src = points[..., :2] / points[..., 2:]
    # align_corners=True: -1 and +1 are the centres of the first and last pixels
    grid = torch.stack(
        (2 * src[..., 0] / max(src_w - 1, 1) - 1, 2 * src[..., 1] / max(src_h - 1, 1) - 1), dim=-1
    )
    value = torch.tensor([float(v) for v in fill], dtype=torch.float32).reshape(-1, 1, 1)
    value = value.expand(c, 1, 1) if value.shape[0] == 1 else value[:c]
    # grid_sample pads with zeros: shifting by the fill value makes the border exactly `fill`,
    # blended bilinearly at the image's edge as cv2 does with a constant border
    shifted = img.float() - value
    out = nnf.grid_sample(
        shifted[None], grid[None].float(), mode="bilinear", padding_mode="zeros", align_corners=True
    )[0]
    out = out + value
    if img.dtype == torch.uint8:
        return out.round_().clamp_(0, 255).to(torch.uint8)
    return out.to(img.dtype)


def project_boxes(boxes: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """The boxes enclosing each (N, 4) xyxy box's four corners after the 3x3 `matrix`."""
    x1, y1, x2, y2 = boxes.double().unbind(dim=1)
    corners = torch.stack(
        (
            torch.stack((x1, y1), dim=1),
            torch.stack((x2, y1), dim=1),
            torch.stack((x1, y2), dim=1),
            torch.stack((x2, y2), dim=1),
        ),
        dim=1,
    )  # (N, 4, 2)
    homogeneous = torch.cat((corners, torch.ones_like(corners[..., :1])), dim=-1)
    moved = homogeneous @ matrix.double().T
    xy = moved[..., :2] / moved[..., 2:]
    return torch.cat((xy.amin(dim=1), xy.amax(dim=1)), dim=1).to(boxes.dtype)


def clip_boxes(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(N, 4) xyxy boxes clipped to a height x width image."""
    return torch.stack(
        (
            boxes[:, 0].clamp(0, width),
            boxes[:, 1].clamp(0, height),
            boxes[:, 2].clamp(0, width),
            boxes[:, 3].clamp(0, height),
        ),
        dim=1,
    )


def inside_image(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Which boxes keep some area inside the image (mmdet's is_inside, and not degenerate)."""
    return (
        (boxes[:, 0] < width)
        & (boxes[:, 1] < height)
        & (boxes[:, 2] > 0)
        & (boxes[:, 3] > 0)
        & (boxes[:, 2] > boxes[:, 0])
        & (boxes[:, 3] > boxes[:, 1])
    )


def keep_inside(results: Results, height: int, width: int, clip: bool) -> None:
    """Clip every box field (if `clip`) and drop, with their labels, the boxes left outside."""
    for key in box_fields(results):
        boxes = results[key]
        if clip:
            boxes = clip_boxes(boxes, height, width)
        keep = inside_image(boxes, height, width)
        results[key] = boxes[keep]
        labels = LABELS_OF.get(key)
        if labels in results:
            results[labels] = results[labels][keep]


@TRANSFORMS.register()
class RandomAffine:
    """Random rotation, scaling, shear and translation in one warp; boxes follow their corners.

    The matrix is translate @ shear @ rotate @ scale about the image's top-left corner, as
    mmdet builds it. The output is the input's size grown by `border` (w, h) on each side
    (negative after Mosaic: YOLOX's `border=(-w/2, -h/2)` keeps the mosaic's top-left part at
    the single-image size). Each box becomes the box enclosing its four moved corners, is
    clipped when `bbox_clip_border`, and is dropped with its label once nothing of it is left
    inside the image.
    """

    def __init__(
        self,
        max_rotate_degree: float = 10.0,
        max_translate_ratio: float = 0.1,
        scaling_ratio_range: Sequence[float] = (0.5, 1.5),
        max_shear_degree: float = 2.0,
        border: Sequence[int] = (0, 0),
        border_val: Sequence[float] = (114, 114, 114),
        bbox_clip_border: bool = True,
    ):
        if not 0 <= max_translate_ratio <= 1:
            raise DataError(
                f"RandomAffine: max_translate_ratio is a fraction of the image in [0, 1]; "
                f"got {max_translate_ratio!r}."
            )
        if (
            len(scaling_ratio_range) != 2
            or not 0 < scaling_ratio_range[0] <= scaling_ratio_range[1]
        ):
            raise DataError(
                f"RandomAffine: scaling_ratio_range is [min, max] with 0 < min <= max; "
                f"got {scaling_ratio_range!r}."
            )
        if len(border) != 2:
            raise DataError(f"RandomAffine: border is [w, h] pixels; got {border!r}.")
        self.max_rotate_degree = float(max_rotate_degree)
        self.max_translate_ratio = float(max_translate_ratio)
        self.scaling_ratio_range = (float(scaling_ratio_range[0]), float(scaling_ratio_range[1]))
        self.max_shear_degree = float(max_shear_degree)
        self.border = (int(border[0]), int(border[1]))
        self.border_val = tuple(border_val)
        self.bbox_clip_border = bbox_clip_border

    def random_matrix(self, height: int, width: int) -> torch.Tensor:
        """This call's 3x3 matrix, drawn in mmdet's order (rotation, scale, shear, translation)."""
        rotation = math.radians(random.uniform(-self.max_rotate_degree, self.max_rotate_degree))
        scale = random.uniform(*self.scaling_ratio_range)
        shear_x = math.radians(random.uniform(-self.max_shear_degree, self.max_shear_degree))
        shear_y = math.radians(random.uniform(-self.max_shear_degree, self.max_shear_degree))
        tx = random.uniform(-self.max_translate_ratio, self.max_translate_ratio) * width
        ty = random.uniform(-self.max_translate_ratio, self.max_translate_ratio) * height
        cos, sin = math.cos(rotation), math.sin(rotation)
        rotate = torch.tensor([[cos, -sin, 0.0], [sin, cos, 0.0], [0.0, 0.0, 1.0]])
        scaling = torch.diag(torch.tensor([scale, scale, 1.0]))
        shear = torch.tensor(
            [[1.0, math.tan(shear_x), 0.0], [math.tan(shear_y), 1.0, 0.0], [0.0, 0.0, 1.0]]
        )
        translate = torch.tensor([[1.0, 0.0, tx], [0.0, 1.0, ty], [0.0, 0.0, 1.0]])
        return (translate.double() @ shear.double() @ rotate.double() @ scaling.double()).float()

    def __call__(self, results: Results) -> Results:
        refuse_masks(results, "RandomAffine")
        img: torch.Tensor = results["img"]
        height = int(img.shape[-2]) + 2 * self.border[1]
        width = int(img.shape[-1]) + 2 * self.border[0]
        if height <= 0 or width <= 0:
            raise DataError(
                f"RandomAffine: border {list(self.border)} leaves no image of a "
                f"{int(img.shape[-1])}x{int(img.shape[-2])} input; make it less negative."
            )
        matrix = self.random_matrix(height, width)
        results["img"] = warp_image(img, matrix, height, width, self.border_val)
        results["img_shape"] = (height, width, int(img.shape[0]))
        results["pad_shape"] = (height, width, int(img.shape[0]))
        for key in box_fields(results):
            if len(results[key]):
                results[key] = project_boxes(results[key], matrix)
        keep_inside(results, height, width, self.bbox_clip_border)
        return results

    def __repr__(self) -> str:
        return (
            f"RandomAffine(max_rotate_degree={self.max_rotate_degree}, "
            f"max_translate_ratio={self.max_translate_ratio}, "
            f"scaling_ratio_range={self.scaling_ratio_range}, "
            f"max_shear_degree={self.max_shear_degree}, border={self.border}, "
            f"border_val={self.border_val}, bbox_clip_border={self.bbox_clip_border})"
        )

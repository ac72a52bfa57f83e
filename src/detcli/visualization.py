"""Boxes (and instance masks) drawn on images, readable at any size: `detcli predict` PNGs
and `dataset show`.

One drawing path: small images are upscaled (short side at least `MIN_SHORT_SIDE`, boxes
alike), line width and font grow with the image, each label sits on a box of its class colour
with black or white text (whichever contrasts), and an optional caption (e.g. the score
threshold) sits in the bottom-left corner on a dark box. Masks are filled translucently in
their box's colour, at the image's own resolution (before any upscaling).
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import torch
import torchvision.transforms.v2.functional as F
from PIL import ImageDraw, ImageFont
from torchvision.io import write_png

from detcli.structures import Detections

# 512 px on the short side keeps a 10-px label legible on a 32-px thumbnail.
MIN_SHORT_SIDE = 512
CAPTION_BACKGROUND = (0, 0, 0)
CAPTION_TEXT = (255, 255, 255)
MASK_ALPHA = 0.45  # the image stays visible under the fill


def class_colours(num_classes: int) -> list[tuple[int, int, int]]:
    """Well separated colours, one per class (evenly spaced hues)."""
    return [
        tuple(int(255 * c) for c in colorsys.hsv_to_rgb(k / max(num_classes, 1), 0.9, 1.0))  # type: ignore[misc]
        for k in range(num_classes)
    ]


def text_colour(background: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black on light backgrounds, white on dark ones (ITU-R 601 luma)."""
    r, g, b = background
    return (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 140 else (255, 255, 255)


def display_scale(height: int, width: int, min_short_side: int = MIN_SHORT_SIDE) -> float:
    """The factor an image is drawn at: >1 brings its short side to `min_short_side`."""
    return max(1.0, min_short_side / max(1, min(height, width)))


@lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (ImportError, OSError):  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def draw_boxes(
    img: torch.Tensor,
    boxes: torch.Tensor,
    names: Sequence[str],
    colours: Sequence[tuple[int, int, int]],
    caption: str | None = None,
    min_short_side: int = MIN_SHORT_SIDE,
    masks: torch.Tensor | None = None,
) -> torch.Tensor:
    """uint8 (3, H', W'): `img` upscaled as `display_scale` says, each box with its label;
    `masks` (bool (K, H, W) in `img` pixels, one per box) filled in the box's colour."""
    if img.shape[0] == 1:
        img = img.expand(3, -1, -1)
    h, w = int(img.shape[-2]), int(img.shape[-1])
    if masks is not None and len(masks):
        img = fill_masks(img, masks, colours)
    scale = display_scale(h, w, min_short_side)
    if scale > 1:
        img = F.resize(img, [round(h * scale), round(w * scale)], antialias=True)
    short = min(img.shape[-2:])
    line = max(2, round(short / 256))
    font = _font(max(12, round(short / 40)))
    pil = F.to_pil_image(img)
    pen = ImageDraw.Draw(pil)
    for box, name, given in zip((boxes.float() * scale).tolist(), names, colours, strict=True):
        x0, y0, x1, y1 = box
        r, g, b = given
        colour = (int(r), int(g), int(b))  # Pillow refuses numpy or float channels
        pen.rectangle((x0, y0, x1, y1), outline=colour, width=line)
        left, top, right, bottom = pen.textbbox((0, 0), name, font=font)
        tw, th = right - left + 2 * line, bottom - top + 2 * line
        # Above the box when it fits, else just inside its top edge.
        ty = y0 - th if y0 - th >= 0 else y0
        tx = min(max(0, x0), max(0, pil.width - tw))
        pen.rectangle((tx, ty, tx + tw, ty + th), fill=colour)
        pen.text((tx + line - left, ty + line - top), name, fill=text_colour(colour), font=font)
    if caption:
        left, top, right, bottom = pen.textbbox((0, 0), caption, font=font)
        tw, th = right - left + 2 * line, bottom - top + 2 * line
        y = pil.height - th
        pen.rectangle((0, y, tw, pil.height), fill=CAPTION_BACKGROUND)
        pen.text((line - left, y + line - top), caption, fill=CAPTION_TEXT, font=font)
    drawn: torch.Tensor = F.pil_to_tensor(pil)  # torchvision is untyped: Any to mypy
    return drawn


def fill_masks(
    img: torch.Tensor, masks: torch.Tensor, colours: Sequence[tuple[int, int, int]]
) -> torch.Tensor:
    """uint8 (3, H, W): each mask blended over `img` in its colour (torchvision's drawing)."""
    from torchvision.utils import draw_segmentation_masks

    if tuple(masks.shape[-2:]) != tuple(img.shape[-2:]):
        raise ValueError(
            f"masks of size {tuple(masks.shape[-2:])} for an image of {tuple(img.shape[-2:])}"
        )
    tints = [(int(r), int(g), int(b)) for r, g, b in colours]
    filled: torch.Tensor = draw_segmentation_masks(
        img.to(torch.uint8), masks.bool().cpu(), alpha=MASK_ALPHA, colors=tints
    )
    return filled


def draw_detections(
    img: torch.Tensor,
    det: Detections,
    classes: Sequence[str],
    width: int | None = None,
    colours: Sequence[tuple[int, int, int]] | None = None,
    score_thr: float | None = None,
) -> torch.Tensor:
    """uint8 (3, H', W') with each box in its class colour, labelled `name 0.93`, and its
    mask filled in that colour when the detections carry masks (`det.masks`).

    `colours`: one (r, g, b) per class (a dataset's palette); default: evenly spaced hues.
    `score_thr`: shown in a corner caption (`score >= 0.30`) when given. `width` is kept for
    callers of the earlier signature; line width now follows the image size.
    """
    colours = colours or class_colours(len(classes))
    labels = det.labels.tolist()
    names = [f"{classes[k]} {s:.2f}" for k, s in zip(labels, det.scores.tolist(), strict=True)]
    caption = f"score >= {score_thr:.2f}" if score_thr is not None else None
    tints = [colours[k] for k in labels]
    return draw_boxes(img, det.boxes, names, tints, caption, masks=det.masks)


def write_drawn(
    path: Path,
    img: torch.Tensor,
    det: Detections,
    classes: Sequence[str],
    colours: Sequence[tuple[int, int, int]] | None = None,
    score_thr: float | None = None,
) -> Path:
    """Draw `det` on `img` (see `draw_detections`) and write a PNG at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_png(draw_detections(img, det, classes, colours=colours, score_thr=score_thr), str(path))
    return path

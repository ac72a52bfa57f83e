"""Detections drawn on images (the PNGs of `detcli predict`), in `dataset show`'s colours."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from torchvision.io import write_png
from torchvision.utils import draw_bounding_boxes

from detcli.data.inspect.show import class_colours
from detcli.structures import Detections


def draw_detections(
    img: torch.Tensor,
    det: Detections,
    classes: Sequence[str],
    width: int = 2,
    colours: Sequence[tuple[int, int, int]] | None = None,
) -> torch.Tensor:
    """uint8 (3, H, W) with each box drawn in its class colour, labelled `name 0.93`.

    `colours`: one (r, g, b) per class (a dataset's palette); default: evenly spaced hues.
    """
    if not len(det):
        return img
    colours = colours or class_colours(len(classes))
    labels = det.labels.tolist()
    names = [f"{classes[k]} {s:.2f}" for k, s in zip(labels, det.scores.tolist(), strict=True)]
    return draw_bounding_boxes(
        img, det.boxes.float(), names, [colours[k] for k in labels], width=width
    )


def write_drawn(
    path: Path,
    img: torch.Tensor,
    det: Detections,
    classes: Sequence[str],
    colours: Sequence[tuple[int, int, int]] | None = None,
) -> Path:
    """Draw `det` on `img` (in `colours`, one per class, when given) and write a PNG at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_png(draw_detections(img, det, classes, colours=colours), str(path))
    return path

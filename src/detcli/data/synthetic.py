"""A synthetic detection set: coloured shapes with known boxes, as real image files + COCO json.

Tests and the demo need data that exists without a download and that a small detector can
learn from scratch on a CPU in minutes. So every class is one distinct shape (class name =
shape name), drawn in a random colour that contrasts with a plain, mildly noisy background;
the class is carried by the shape alone, never by the colour. Boxes are the exact extent of
the drawn pixels, and each object's `segmentation` is the exact set of pixels it shows (COCO
RLE), so Mask R-CNN trains on the same set. Everything is derived from `(seed, split)`, so a
set is reproducible and the splits never share images.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from detcli.errors import DataError

# Each shape is a predicate on coordinates u, v in [-1, 1] across the object's box.
_Mask = Callable[[np.ndarray, np.ndarray], np.ndarray]
SHAPES: dict[str, _Mask] = {
    "square": lambda u, v: np.ones(np.broadcast(u, v).shape, dtype=bool),
    "circle": lambda u, v: u * u + v * v <= 1.0,
    "triangle": lambda u, v: np.abs(u) <= (v + 1.0) / 2.0,
    "cross": lambda u, v: (np.abs(u) <= 0.3) | (np.abs(v) <= 0.3),
    "ring": lambda u, v: (u * u + v * v <= 1.0) & (u * u + v * v >= 0.36),
    "diamond": lambda u, v: np.abs(u) + np.abs(v) <= 1.0,
    "hexagon": lambda u, v: np.abs(u) + 0.5 * np.abs(v) <= 1.0,
    "frame": lambda u, v: np.maximum(np.abs(u), np.abs(v)) >= 0.6,
    "x": lambda u, v: (np.abs(u - v) <= 0.4) | (np.abs(u + v) <= 0.4),
    "semicircle": lambda u, v: u * u + ((v - 1.0) / 2.0) ** 2 <= 1.0,
}
MIN_REL_SIZE, MAX_REL_SIZE = 0.12, 0.5  # object size as a fraction of the image's short side
MAX_OVERLAP = 0.1  # objects may overlap a little (of the smaller one), never hide each other
_SUFFIX = {"png": ".png", "jpg": ".jpg"}


def shape_names(num_classes: int) -> tuple[str, ...]:
    """The class names of a synthetic set with `num_classes` classes (the first shapes)."""
    if not 1 <= num_classes <= len(SHAPES):
        raise DataError(
            f"A synthetic shapes set has 1 to {len(SHAPES)} classes ({', '.join(SHAPES)}); "
            f"{num_classes} was asked for. Pass a class count in that range."
        )
    return tuple(list(SHAPES)[:num_classes])


def write_shapes_coco(
    out_dir: Path,
    *,
    num_images: int = 32,
    num_classes: int = 3,
    image_size: int | tuple[int, int] = 128,
    seed: int = 0,
    split: str = "train",
    image_format: str = "png",
) -> tuple[Path, Path]:
    """Write `out_dir/<split>.json` (COCO) and images under `out_dir/<split>/`; return both.

    `image_size` is the side of square images, or (width, height).
    """
    from PIL import Image

    names = shape_names(num_classes)
    width, height = (image_size, image_size) if isinstance(image_size, int) else image_size
    if num_images < 1 or min(width, height) < 32:
        raise DataError(
            f"A synthetic set needs at least 1 image of at least 32 px; got {num_images} "
            f"image(s) of {image_size} px. Raise --images or --size."
        )
    if image_format not in _SUFFIX:
        raise DataError(f"Image format {image_format!r} is not one of {', '.join(_SUFFIX)}.")
    out_dir = Path(out_dir)
    img_dir = out_dir / split
    img_dir.mkdir(parents=True, exist_ok=True)
    # crc32, unlike hash(), is the same in every process: a split's images never change.
    rng = np.random.default_rng([seed, zlib.crc32(split.encode())])
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for index in range(num_images):
        img_id = index + 1
        pixels, objects = _draw_image(rng, width, height, len(names))
        file_name = f"{index:06d}{_SUFFIX[image_format]}"
        save_args: dict[str, Any] = {"quality": 95} if image_format == "jpg" else {}
        Image.fromarray(pixels).save(img_dir / file_name, **save_args)
        images.append({"id": img_id, "file_name": file_name, "width": width, "height": height})
        for label, (x1, y1, x2, y2), rle in objects:
            w, h = x2 - x1, y2 - y1
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": img_id,
                    "category_id": label + 1,
                    "bbox": [float(x1), float(y1), float(w), float(h)],
                    "area": float(w * h),
                    "iscrowd": 0,
                    "segmentation": rle,
                }
            )
    categories = [{"id": i + 1, "name": n, "supercategory": "shape"} for i, n in enumerate(names)]
    coco = {
        "info": {"description": f"detcli synthetic shapes, split {split}, seed {seed}"},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }
    ann_file = out_dir / f"{split}.json"
    ann_file.write_text(json.dumps(coco), encoding="utf-8")
    return ann_file, img_dir


def _draw_image(
    rng: np.random.Generator, width: int, height: int, num_classes: int
) -> tuple[np.ndarray, list[tuple[int, tuple[int, int, int, int], dict[str, Any]]]]:
    """One image (HWC uint8) and its objects as (label, tight xyxy box in pixels, RLE mask)."""
    from pycocotools import mask as mask_utils

    background = rng.integers(0, 256, size=3)
    canvas = np.empty((height, width, 3), dtype=np.float32)
    canvas[:] = background
    owner = np.full((height, width), -1, dtype=np.int16)  # which object each pixel shows
    labels: list[int] = []
    placed_boxes: list[tuple[int, int, int, int]] = []
    for _ in range(int(rng.integers(1, 5))):
        label = int(rng.integers(num_classes))
        placed = _place(rng, width, height, placed_boxes)
        if placed is None:
            continue
        x0, y0, w, h = placed
        # Pixel centres across the object's box, mapped to [-1, 1].
        u = (np.arange(w, dtype=np.float32) + 0.5) / w * 2.0 - 1.0
        v = (np.arange(h, dtype=np.float32) + 0.5) / h * 2.0 - 1.0
        mask = SHAPES[list(SHAPES)[label]](u[None, :], v[:, None])
        canvas[y0 : y0 + h, x0 : x0 + w][mask] = _contrasting_colour(rng, background)
        owner[y0 : y0 + h, x0 : x0 + w][mask] = len(labels)
        labels.append(label)
        placed_boxes.append((x0, y0, x0 + w, y0 + h))
    # Boxes from the pixels each object still shows, so they are tight even where a later
    # object covers an edge of an earlier one.
    objects = []
    for index, label in enumerate(labels):
        ys, xs = np.nonzero(owner == index)
        if ys.size:
            box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
            rle = mask_utils.encode(np.asfortranarray(owner == index, dtype=np.uint8))
            objects.append(
                (label, box, {"size": [height, width], "counts": rle["counts"].decode()})
            )
    canvas += rng.normal(0.0, 6.0, size=canvas.shape).astype(np.float32)
    return np.clip(canvas + 0.5, 0, 255).astype(np.uint8), objects


def _place(
    rng: np.random.Generator, width: int, height: int, boxes: list[tuple[int, int, int, int]]
) -> tuple[int, int, int, int] | None:
    """A random (x, y, w, h) in the image that covers little of any earlier box, or None."""
    for _ in range(50):
        side = rng.uniform(MIN_REL_SIZE, MAX_REL_SIZE) * min(width, height)
        aspect = np.sqrt(rng.uniform(0.7, 1.45))
        w = int(np.clip(round(side * aspect), 4, width))
        h = int(np.clip(round(side / aspect), 4, height))
        x0 = int(rng.integers(0, width - w + 1))
        y0 = int(rng.integers(0, height - h + 1))
        if all(_overlap((x0, y0, x0 + w, y0 + h), b) <= MAX_OVERLAP for b in boxes):
            return x0, y0, w, h
    return None


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over the smaller box: a small box inside a large one counts as 1."""
    iw = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return iw * ih / smaller


def _contrasting_colour(rng: np.random.Generator, background: np.ndarray) -> np.ndarray:
    """A random colour far enough from the background to be seen at once."""
    for _ in range(100):
        colour = rng.integers(0, 256, size=3)
        if np.abs(colour - background).sum() >= 200:
            return colour
    return 255 - background

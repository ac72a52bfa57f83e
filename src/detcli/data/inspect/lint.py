"""Annotation lint: every problem in a COCO file and its images, each with the ids involved."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from detcli.data.coco_json import (
    ABSURD_BOX_FACTOR,
    EntryProblem,
    annotation_arrays,
    annotation_path,
    entry_problems,
    image_dir,
    index_of,
    malformed_boxes,
    read_coco_json,
)
from detcli.data.inspect.mask_lint import is_mask_file, lint_masks

EDGE_TOLERANCE = 1.0  # px a box may reach past the border before it counts (rounding in exports)
_EXIF_SWAPS_AXES = {5, 6, 7, 8}  # orientations that rotate by 90 degrees


@dataclass(frozen=True)
class Problem:
    """One thing wrong in an annotation file or with one of its images."""

    kind: str
    severity: Literal["error", "warning"]
    file: str  # the annotation file, or the image file for file problems
    message: str
    image_id: int | None = None
    ann_id: int | None = None
    category_id: int | None = None

    @property
    def ids(self) -> str:
        parts = [
            f"{name} {value}"
            for name, value in (
                ("image", self.image_id),
                ("annotation", self.ann_id),
                ("category", self.category_id),
            )
            if value is not None
        ]
        return ", ".join(parts)


def dataset_sources(cfg: Mapping[str, Any]) -> Iterator[tuple[str, str, bool]]:
    """(ann_file, img_prefix, is_test) of every leaf dataset in a dataset config (wrappers too)."""
    if isinstance(cfg.get("dataset"), Mapping):
        yield from dataset_sources(cfg["dataset"])
    elif isinstance(cfg.get("datasets"), list):
        for part in cfg["datasets"]:
            yield from dataset_sources(part)
    elif "ann_file" in cfg:
        yield annotation_path(cfg), image_dir(cfg), bool(cfg.get("test_mode", False))


def lint_coco(
    ann_file: str,
    img_prefix: str,
    *,
    check_images: bool = True,
    decode: bool = False,
    allow_no_annotations: bool = False,
    workers: int = 8,
    max_pixels: int | None = None,
) -> list[Problem]:
    """Every problem of `ann_file` (and, with check_images, of its image files).

    `max_pixels`: the decoder's pixel limit (None: $DETCLI_MAX_IMAGE_PIXELS or Pillow's).
    """
    data = read_coco_json(ann_file, allow_no_annotations=allow_no_annotations, strict=False)
    bad_entries = entry_problems(data)
    problems = [_entry_problem(ann_file, p) for p in bad_entries]
    _drop_entries(data, bad_entries)  # the rest of the checks read well-formed entries only
    if not data["annotations"] and not allow_no_annotations:
        problems.append(
            Problem(
                "no annotations",
                "error",
                ann_file,
                f"`annotations` is empty ({len(data['images'])} images): nothing to train or "
                f"score on. Only a test split (test_mode) may come without boxes.",
            )
        )
    images, cats = data["images"], data["categories"]
    img_ids = np.array([i["id"] for i in images], dtype=np.int64)
    cat_ids = np.array([c["id"] for c in cats], dtype=np.int64)
    anns = annotation_arrays(data["annotations"])

    def add(kind: str, severity: Literal["error", "warning"], message: str, **ids: Any) -> None:
        problems.append(Problem(kind, severity, ann_file, message, **ids))

    for what, ids, key in (
        ("image", img_ids, "image_id"),
        ("annotation", anns.ids, "ann_id"),
        ("category", cat_ids, "category_id"),
    ):
        values, counts = np.unique(ids, return_counts=True)
        for value, count in zip(
            values[counts > 1].tolist(), counts[counts > 1].tolist(), strict=True
        ):
            add(
                f"duplicate {what} id",
                "error",
                f"{what} id {value} is used {count} times",
                **{key: value},
            )
    names, counts = np.unique([str(c["name"]) for c in cats], return_counts=True)
    for name in names[counts > 1].tolist():
        add("duplicate category name", "warning", f"category name {name!r} has several ids")

    order = np.argsort(img_ids, kind="stable")
    img_index = index_of(img_ids[order], order, anns.image_ids)
    cat_order = np.argsort(cat_ids, kind="stable")
    known_cat = index_of(cat_ids[cat_order], cat_order, anns.category_ids) >= 0
    for k in np.flatnonzero(img_index < 0).tolist():
        add(
            "unknown image id",
            "error",
            f"annotation refers to image id {anns.image_ids[k]}, which is not in `images`",
            ann_id=int(anns.ids[k]),
            image_id=int(anns.image_ids[k]),
        )
    for k in np.flatnonzero(~known_cat).tolist():
        add(
            "unknown category id",
            "error",
            f"annotation has category id {anns.category_ids[k]}, which is not in `categories`",
            ann_id=int(anns.ids[k]),
            image_id=int(anns.image_ids[k]),
            category_id=int(anns.category_ids[k]),
        )

    for k in np.flatnonzero(anns.ids == 0).tolist():
        add(
            "annotation id 0",
            "warning",
            "pycocotools (COCO eval in most tools) never matches a ground-truth box whose id is "
            "0, so a correct detection of it counts as a false positive; detcli's own eval "
            "renumbers the ids. Number annotations from 1 for other tools.",
            ann_id=0,
            image_id=int(anns.image_ids[k]),
        )
    known = img_index >= 0
    safe = img_index.clip(0)
    sizes = np.array([(i["width"], i["height"]) for i in images], np.float64).reshape(-1, 2)
    width = np.where(known, sizes[safe, 0], np.nan) if images else np.full(len(known), np.nan)
    height = np.where(known, sizes[safe, 1], np.nan) if images else np.full(len(known), np.nan)
    malformed = malformed_boxes(anns.boxes_xywh, width, height)
    for k in np.flatnonzero(malformed).tolist():
        add(
            "malformed box",
            "error",
            f"bbox {anns.boxes_xywh[k].tolist()} has inf/NaN values or is more than "
            f"{ABSURD_BOX_FACTOR:g}x its {width[k]:g}x{height[k]:g} image; training and "
            f"evaluation leave it out",
            ann_id=int(anns.ids[k]),
            image_id=int(anns.image_ids[k]),
        )
    x, y, w, h = np.where(malformed[:, None], 1.0, anns.boxes_xywh).T  # reported once, above
    for k in np.flatnonzero((w <= 0) | (h <= 0)).tolist():
        add(
            "zero or negative size",
            "error",
            f"bbox {anns.boxes_xywh[k].tolist()} has width {w[k]:g} and height {h[k]:g}",
            ann_id=int(anns.ids[k]),
            image_id=int(anns.image_ids[k]),
        )
    fully_out = known & ((x >= width) | (y >= height) | (x + w <= 0) | (y + h <= 0))
    partly_out = (
        known
        & ~fully_out
        & (
            (x < -EDGE_TOLERANCE)
            | (y < -EDGE_TOLERANCE)
            | (x + w > width + EDGE_TOLERANCE)
            | (y + h > height + EDGE_TOLERANCE)
        )
    )
    for mask, severity, how in (
        (fully_out, "error", "entirely"),
        (partly_out, "warning", "partly"),
    ):
        for k in np.flatnonzero(mask & (w > 0) & (h > 0) & ~malformed).tolist():
            add(
                f"box {how} outside image",
                severity,  # type: ignore[arg-type]
                f"bbox {anns.boxes_xywh[k].tolist()} is {how} outside the "
                f"{width[k]:g}x{height[k]:g} image",
                ann_id=int(anns.ids[k]),
                image_id=int(anns.image_ids[k]),
            )
    if is_mask_file(data["annotations"]):
        lint_masks(data["annotations"], width, height, add)
    if check_images:
        problems += _check_image_files(images, img_prefix, decode, workers, max_pixels)
    return problems


def _entry_problem(ann_file: str, p: EntryProblem) -> Problem:
    """A field train and eval would refuse (a string id, a null width...), with its entry."""
    ident = p.ident if type(p.ident) is int else None
    key = {"images": "image_id", "annotations": "ann_id", "categories": "category_id"}[p.key]
    kind = f"bad {p.key[:-1] if p.key != 'categories' else 'category'} field"
    return Problem(kind, "error", ann_file, p.describe(), **{key: ident})


def _drop_entries(data: dict[str, Any], problems: list[EntryProblem]) -> None:
    """Leave out the entries `entry_problems` found (their fields cannot be read as arrays)."""
    bad: dict[str, set[int]] = {}
    for p in problems:
        bad.setdefault(p.key, set()).add(p.index)
    for key, indices in bad.items():
        data[key] = [e for i, e in enumerate(data[key]) if i not in indices]


def _check_image_files(
    images: list[dict[str, Any]], prefix: str, decode: bool, workers: int, max_pixels: int | None
) -> list[Problem]:
    """Missing, unreadable, too large and wrongly sized image files (I/O runs in threads)."""
    from detcli.data.transforms.loading import header_size, max_image_pixels

    limit = max_image_pixels(max_pixels)

    def check(info: dict[str, Any]) -> Problem | None:
        path = os.path.join(prefix, str(info["file_name"])) if prefix else str(info["file_name"])
        img_id = int(info["id"])
        if not os.path.isfile(path):
            return Problem("missing image file", "error", path, "no such file", image_id=img_id)
        declared = header_size(path)
        if limit is not None and declared is not None and declared[0] * declared[1] > limit:
            return Problem(
                "image too large",
                "error",
                path,
                f"the file declares {declared[0]}x{declared[1]} pixels, over the limit of "
                f"{limit:,} ($DETCLI_MAX_IMAGE_PIXELS / LoadImageFromFile max_pixels): train, "
                f"eval and predict refuse it",
                image_id=img_id,
            )
        try:
            size = _decoded_size(path) if decode else _header_size(path)
        except Exception as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return Problem("unreadable image file", "error", path, reason, image_id=img_id)
        if size != (info["width"], info["height"]):
            return Problem(
                "image size mismatch",
                "error",
                path,
                f"the json says {info['width']}x{info['height']}, the file is "
                f"{size[0]}x{size[1]} (after EXIF orientation)",
                image_id=img_id,
            )
        return None

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return [p for p in pool.map(check, images) if p is not None]


def _header_size(path: str) -> tuple[int, int]:
    """(width, height) as the loader will see it, from the header only (no full decode)."""
    from PIL import Image

    with Image.open(path) as im:
        w, h = im.size
        orientation = im.getexif().get(0x0112, 1)
    return (h, w) if orientation in _EXIF_SWAPS_AXES else (w, h)


def _decoded_size(path: str) -> tuple[int, int]:
    """(width, height) after a full decode with the training loader (finds truncated files)."""
    from detcli.data.transforms.loading import load_image

    img = load_image(path)
    return int(img.shape[2]), int(img.shape[1])

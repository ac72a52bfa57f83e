"""Reading a COCO annotation file with clear errors, and its annotations as flat arrays."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from detcli.config.paths import join_root
from detcli.errors import DataError

REQUIRED_KEYS = ("images", "annotations", "categories")
_ENTRY_KEYS = {
    "images": ("id", "file_name", "width", "height"),
    "annotations": ("id", "image_id", "category_id", "bbox"),
    "categories": ("id", "name"),
}


def image_dir(cfg: Mapping[str, Any]) -> str:
    """The image folder a CocoDataset config names, in either spelling (2.x or 3.x), joined."""
    prefix = cfg.get("img_prefix")
    data_prefix = cfg.get("data_prefix")
    if prefix is None and isinstance(data_prefix, Mapping):
        prefix = data_prefix.get("img")
    return join_root(cfg.get("data_root"), str(prefix or ""))


def annotation_path(cfg: Mapping[str, Any]) -> str:
    """The annotation file a CocoDataset config names, joined with its `data_root`."""
    return join_root(cfg.get("data_root"), str(cfg["ann_file"]))


def read_coco_json(path: str | Path, *, allow_no_annotations: bool = False) -> dict[str, Any]:
    """The parsed annotation file; DataError naming the file (and entry) if it cannot be used."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(
            f"Annotation file {path} does not exist. Check `ann_file` (and `data_root`) in the "
            f"config, or write a synthetic set with `detcli dataset synth`."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"Annotation file {path} cannot be read: {exc}.") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        hint = " The file ends early: it is truncated." if exc.pos >= len(text.rstrip()) else ""
        raise DataError(
            f"Annotation file {path} is not valid JSON (line {exc.lineno}, column {exc.colno}: "
            f"{exc.msg}).{hint} Re-export or re-download it."
        ) from None
    if not isinstance(data, dict):
        raise DataError(f"Annotation file {path} must hold a JSON object with {REQUIRED_KEYS}.")
    if allow_no_annotations:  # a competition test set has images and categories only
        data.setdefault("annotations", [])
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise DataError(
            f"Annotation file {path} has no {', '.join(repr(k) for k in missing)} "
            f"(a COCO file needs {', '.join(REQUIRED_KEYS)}). Is it a COCO detection file?"
        )
    for key, fields in _ENTRY_KEYS.items():
        _check_entries(path, key, data[key], fields)
    return data


def _check_entries(path: Path, key: str, entries: Any, fields: tuple[str, ...]) -> None:
    if not isinstance(entries, list):
        raise DataError(
            f"Annotation file {path}: `{key}` must be a list, not {type(entries).__name__}."
        )
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or any(f not in entry for f in fields):
            ident = entry.get("id", "?") if isinstance(entry, dict) else "?"
            lacking = [f for f in fields if not isinstance(entry, dict) or f not in entry]
            raise DataError(
                f"Annotation file {path}: {key}[{index}] (id {ident}) lacks "
                f"{', '.join(lacking)}; every entry of `{key}` needs {', '.join(fields)}. "
                f"Fix or remove that entry."
            )
    if key == "annotations":
        bad = next((a for a in entries if not _is_box(a["bbox"])), None)
        if bad is not None:
            raise DataError(
                f"Annotation file {path}: annotation id {bad['id']} (image id {bad['image_id']}) "
                f"has bbox {bad['bbox']!r}; a bbox is [x, y, width, height] numbers."
            )


def _is_box(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 4
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    )


@dataclass(frozen=True)
class AnnotationArrays:
    """Every annotation of a file as parallel arrays (one row per annotation, json order)."""

    ids: np.ndarray  # int64
    image_ids: np.ndarray  # int64
    category_ids: np.ndarray  # int64
    boxes_xywh: np.ndarray  # float64 (A, 4)
    areas: np.ndarray  # float64; NaN where the file gives no area
    crowd: np.ndarray  # bool: iscrowd
    ignore: np.ndarray  # bool: an `ignore` flag (some exporters write it)


def annotation_arrays(anns: list[dict[str, Any]]) -> AnnotationArrays:
    """Flatten the `annotations` list once; everything after this is vectorised."""
    n = len(anns)
    boxes = np.array([a["bbox"] for a in anns], dtype=np.float64).reshape(n, 4)
    return AnnotationArrays(
        ids=np.fromiter((a["id"] for a in anns), np.int64, n),
        image_ids=np.fromiter((a["image_id"] for a in anns), np.int64, n),
        category_ids=np.fromiter((a["category_id"] for a in anns), np.int64, n),
        boxes_xywh=boxes,
        areas=np.fromiter((a.get("area", np.nan) for a in anns), np.float64, n),
        crowd=np.fromiter((bool(a.get("iscrowd", 0)) for a in anns), bool, n),
        ignore=np.fromiter((bool(a.get("ignore", False)) for a in anns), bool, n),
    )


def index_of(sorted_ids: np.ndarray, order: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Positions (in the original order) of `ids` among ids sorted by `order`; -1 if absent."""
    if sorted_ids.size == 0:
        return np.full(ids.shape, -1, dtype=np.int64)
    pos = np.searchsorted(sorted_ids, ids).clip(0, sorted_ids.size - 1)
    found = sorted_ids[pos] == ids
    return np.where(found, order[pos], -1)

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
_ID_FIELDS = {
    "images": ("id",),
    "annotations": ("id", "image_id", "category_id"),
    "categories": ("id",),
}
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
# A box this many times wider (or taller) than its image is an exporter's bug, not an object.
ABSURD_BOX_FACTOR = 4.0


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


def read_coco_json(
    path: str | Path, *, allow_no_annotations: bool = False, strict: bool = True
) -> dict[str, Any]:
    """The parsed annotation file; DataError naming the file (and entry) if it cannot be used.

    `strict=False` (lint) leaves the entries unchecked: `entry_problems` lists them all.
    """
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
    for key in _ENTRY_KEYS:
        if not isinstance(data[key], list):
            raise DataError(
                f"Annotation file {path}: `{key}` must be a list, not {type(data[key]).__name__}."
            )
    if strict:
        refuse_bad_entries(path, entry_problems(data))
    return data


@dataclass(frozen=True)
class EntryProblem:
    """One entry of `images`/`annotations`/`categories` whose fields detcli cannot use."""

    key: str  # images | annotations | categories
    index: int  # position in that list
    ident: Any  # the entry's id as the file gives it ("?" if it has none)
    field: str
    reason: str  # e.g. "is the string '1'; ids must be JSON integers"

    def describe(self) -> str:
        """`annotations[3] (id 7): category_id is the string '1'; ids must be JSON integers`."""
        where = f"{self.key}[{self.index}] (id {_ident(self.ident)})"
        if self.reason.startswith("lacks"):
            return f"{where} {self.reason}"
        return f"{where}: {self.field} {self.reason}"


def entry_problems(data: Mapping[str, Any]) -> list[EntryProblem]:
    """Every entry field that train, eval and lint could read differently: missing fields, ids
    that are not 64-bit integers (strings, floats, null, huge), sizes that are not positive
    integers, bboxes that are not 4 numbers. The fast path (all fine) is one pass per field."""
    problems: list[EntryProblem] = []
    for key, fields in _ENTRY_KEYS.items():
        entries, needed = data[key], frozenset(fields)
        lacking = [
            (i, e)
            for i, e in enumerate(entries)
            if not isinstance(e, dict) or not e.keys() >= needed
        ]
        for index, entry in lacking:
            ident = entry.get("id", "?") if isinstance(entry, dict) else "?"
            missing = [f for f in fields if not isinstance(entry, dict) or f not in entry]
            reason = f"lacks {', '.join(missing)}; every entry of `{key}` needs {', '.join(fields)}"
            problems.append(EntryProblem(key, index, ident, ", ".join(missing), reason))
        bad = {i for i, _ in lacking}
        for field_name in _ID_FIELDS[key]:
            problems += _field_problems(key, entries, bad, field_name, _int_reason)
        if key == "images":
            for field_name in ("width", "height"):
                problems += _field_problems(key, entries, bad, field_name, _size_reason)
        if key == "annotations":
            problems += _field_problems(key, entries, bad, "bbox", _bbox_reason)
    return problems


def _field_problems(
    key: str, entries: list[Any], bad: set[int], field_name: str, reason_of: Any
) -> list[EntryProblem]:
    values = [e[field_name] if i not in bad else 1 for i, e in enumerate(entries)]
    lowest = 1 if field_name in ("width", "height") else _INT64_MIN
    if field_name != "bbox" and _plain_ints(values, lowest):
        return []  # the usual file: plain integers in range
    out = []
    for index, value in enumerate(values):
        reason = None if index in bad else reason_of(value)
        if reason is not None:
            out.append(EntryProblem(key, index, entries[index].get("id", "?"), field_name, reason))
    return out


def _plain_ints(values: list[Any], lowest: int) -> bool:
    """All JSON integers within [lowest, int64 max]: one pass each for types, min and max."""
    if not values:
        return True
    return (
        {type(v) for v in values} <= {int} and min(values) >= lowest and max(values) <= _INT64_MAX
    )


def _int_reason(value: Any) -> str | None:
    if type(value) is not int:
        return f"is {_describe(value)}; ids must be JSON integers"
    if not _INT64_MIN <= value <= _INT64_MAX:
        return f"is {value}, beyond 64-bit integers"
    return None


def _size_reason(value: Any) -> str | None:
    integral = type(value) is int or (type(value) is float and value.is_integer())
    if not integral or value <= 0 or value > _INT64_MAX:
        return f"is {_describe(value)}; image sizes must be positive integers (pixels)"
    return None


def _bbox_reason(value: Any) -> str | None:
    ok = (
        isinstance(value, list)
        and len(value) == 4
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    )
    return None if ok else f"is {_describe(value)}; a bbox is [x, y, width, height] numbers"


def _ident(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _describe(value: Any) -> str:
    if isinstance(value, str):
        return f"the string {value!r}"
    text = json.dumps(value) if not isinstance(value, float) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def refuse_bad_entries(path: str | Path, problems: list[EntryProblem]) -> None:
    """DataError naming the file, the first bad field and its first ids (and how many)."""
    if not problems:
        return
    first = problems[0]
    same = [p for p in problems if (p.key, p.field) == (first.key, first.field)]
    shown = ", ".join(_ident(p.ident) for p in same[:5]) + (" ..." if len(same) > 5 else "")
    what = first.key[:-1] if first.key != "categories" else "category"
    others = len(problems) - len(same)
    more = f" ({others} other bad field(s) too)" if others else ""
    raise DataError(
        f"Annotation file {path}: {first.describe()}; "
        f"{len(same)} {what} entr{'y has' if len(same) == 1 else 'ies have'} a bad `{first.field}` "
        f"({what} ids {shown}){more}. detcli refuses the file rather than guess (training and "
        f"evaluation would read such values differently). Fix the file (e.g. write ids as "
        f'numbers: 1, not "1"); `detcli dataset lint` lists every entry.'
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


def malformed_boxes(boxes_xywh: np.ndarray, img_w: np.ndarray, img_h: np.ndarray) -> np.ndarray:
    """Boxes no exporter means: inf/NaN values, or a size or corner more than ABSURD_BOX_FACTOR
    times its image's size (NaN sizes: image unknown, only the values count). One bool per box."""
    x, y, w, h = boxes_xywh.T
    with np.errstate(invalid="ignore"):
        absurd = (np.maximum(w, np.abs(x)) > ABSURD_BOX_FACTOR * img_w) | (
            np.maximum(h, np.abs(y)) > ABSURD_BOX_FACTOR * img_h
        )
    bad: np.ndarray = ~np.isfinite(boxes_xywh).all(axis=1) | absurd
    return bad


def drop_malformed(data: dict[str, Any]) -> int:
    """Remove `malformed_boxes` from `data["annotations"]` in place; how many were removed."""
    anns = data["annotations"]
    if not anns:
        return 0
    boxes = np.array([a["bbox"] for a in anns], dtype=np.float64).reshape(-1, 4)
    img_w, img_h = image_size_of(
        data["images"], np.fromiter((a["image_id"] for a in anns), np.int64, len(anns))
    )
    bad = malformed_boxes(boxes, img_w, img_h)
    if bad.any():
        data["annotations"] = [a for a, b in zip(anns, bad.tolist(), strict=True) if not b]
    return int(bad.sum())


def image_size_of(
    images: list[dict[str, Any]], image_ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(width, height) float64 of each of `image_ids` as `images` gives them; NaN if unknown."""
    ids = np.fromiter((i["id"] for i in images), np.int64, len(images))
    sizes = np.array([(i["width"], i["height"]) for i in images], np.float64).reshape(-1, 2)
    order = np.argsort(ids, kind="stable")
    where = index_of(ids[order], order, image_ids)
    found = np.vstack([sizes, [np.nan, np.nan]])[where]  # -1 picks the NaN row
    return found[:, 0], found[:, 1]


def index_of(sorted_ids: np.ndarray, order: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Positions (in the original order) of `ids` among ids sorted by `order`; -1 if absent."""
    if sorted_ids.size == 0:
        return np.full(ids.shape, -1, dtype=np.int64)
    pos = np.searchsorted(sorted_ids, ids).clip(0, sorted_ids.size - 1)
    found = sorted_ids[pos] == ids
    return np.where(found, order[pos], -1)

"""CocoDataset's arguments in either spelling (MMDetection 2.x or 3.x / mmengine), resolved.

Kept apart from the dataset so the rules for prefixes, filtering and subsets read in one place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from detcli.config.paths import join_root
from detcli.errors import DataError
from detcli.suggest import did_you_mean

# `filter_cfg`'s default: "auto" filters as the 2.x arguments say, unless the dataset is spelled
# the MMDetection 3.x way (data_prefix, metainfo, ...) without a filter_cfg: then, as mmdet 3.x's
# CocoDataset.filter_data does for `filter_cfg=None`, no image is filtered. `None` says so
# explicitly; a mapping filters as mmdet 3.x does (filter_empty_gt False, min_size 0 if left out).
FILTER_AUTO: Final = "auto"
FILTER_KEYS = ("filter_empty_gt", "min_size")
DATA_PREFIX_KEYS = ("img", "seg")  # seg: semantic maps' folder, kept but unused (no with_seg)
_LOCAL_BACKENDS = (None, "local", "disk")


@dataclass(frozen=True)
class Filtering:
    """Which images a training dataset leaves out: without boxes, smaller than min_size."""

    filter_empty_gt: bool
    min_size: int


def check_backend_args(backend_args: Any) -> None:
    """mmengine's file backend: detcli reads local files, so only a local backend fits."""
    if backend_args is None:
        return
    if not isinstance(backend_args, Mapping):
        raise DataError(
            f"`backend_args` must be a mapping or null, not {backend_args!r}; detcli reads local "
            f"files, so leave it null."
        )
    if backend_args.get("backend") not in _LOCAL_BACKENDS:
        raise DataError(
            f"`backend_args` asks for the {backend_args['backend']!r} file backend; detcli reads "
            f"local files only. Copy the data to a local disk and set `backend_args: null`."
        )


def resolve_data_prefix(
    data_root: str | None, img_prefix: str | None, data_prefix: Mapping[str, str] | None
) -> dict[str, str]:
    """The image folder (and any other prefix) joined with data_root, from either spelling."""
    given = dict(data_prefix or {})
    unknown = [k for k in given if k not in DATA_PREFIX_KEYS]
    if unknown:
        raise DataError(
            f"`data_prefix.{unknown[0]}` is not a prefix CocoDataset reads."
            f"{did_you_mean(str(unknown[0]), DATA_PREFIX_KEYS)} It reads images from "
            f"`data_prefix.img` (e.g. `data_prefix: {{img: train2017/}}`)."
        )
    if img_prefix is not None and "img" in given:
        raise DataError(
            f"The dataset names its image folder twice: `img_prefix: {img_prefix}` "
            f"(MMDetection 2.x) and `data_prefix.img: {given['img']}` (3.x). Keep one of them."
        )
    bad = [k for k, v in given.items() if not isinstance(v, str)]
    if bad:
        raise DataError(f"`data_prefix.{bad[0]}` must be a folder path, not {given[bad[0]]!r}.")
    given.setdefault("img", img_prefix if img_prefix is not None else "")
    return {k: join_root(data_root, v) for k, v in given.items()}


def filtering_of(
    filter_cfg: Mapping[str, Any] | str | None,
    filter_empty_gt: bool | None,
    min_size: int | None,
    spelled_3x: bool,
) -> Filtering:
    """What a training dataset filters, from the 2.x arguments or the 3.x filter_cfg."""
    given_2x = filter_empty_gt is not None or min_size is not None
    if filter_cfg == FILTER_AUTO:
        if spelled_3x and not given_2x:
            return Filtering(False, 0)  # mmdet 3.x: no filter_cfg, nothing filtered
        return Filtering(
            True if filter_empty_gt is None else bool(filter_empty_gt),
            32 if min_size is None else int(min_size),
        )
    if given_2x:
        values = (filter_empty_gt, min_size)
        twice = " and ".join(
            f"`{k}`" for k, v in zip(FILTER_KEYS, values, strict=True) if v is not None
        )
        raise DataError(
            f"The dataset sets its filtering twice: {twice} (MMDetection 2.x) and `filter_cfg` "
            f"(3.x). Keep one spelling, e.g. `filter_cfg: {{filter_empty_gt: true, min_size: 32}}`."
        )
    if filter_cfg is None:
        return Filtering(False, 0)
    if not isinstance(filter_cfg, Mapping):
        raise DataError(
            f"`filter_cfg` must be a mapping like {{filter_empty_gt: true, min_size: 32}} or "
            f"null, not {filter_cfg!r}."
        )
    unknown = [k for k in filter_cfg if k not in FILTER_KEYS]
    if unknown:
        raise DataError(
            f"`filter_cfg.{unknown[0]}` is not a filter setting."
            f"{did_you_mean(str(unknown[0]), FILTER_KEYS)} "
            f"CocoDataset's filter_cfg takes {' and '.join(FILTER_KEYS)}."
        )
    # mmdet 3.x reads both with .get and these defaults: a key left out does not filter
    return Filtering(
        bool(filter_cfg.get("filter_empty_gt", False)), int(filter_cfg.get("min_size", 0))
    )


def subset(indices: int | Sequence[int], size: int) -> np.ndarray:
    """mmengine's `indices`: the first N images (last -N if negative), or those positions."""
    if isinstance(indices, int) and not isinstance(indices, bool):
        picked = np.arange(size)[:indices] if indices >= 0 else np.arange(size)[indices:]
        return picked
    if isinstance(indices, (list, tuple)) and all(
        isinstance(i, int) and not isinstance(i, bool) for i in indices
    ):
        order = np.asarray(indices, dtype=np.int64)
        if order.size and (order.max() >= size or order.min() < -size):
            raise DataError(
                f"`indices` names image {int(order.max() if order.max() >= size else order.min())}"
                f" but the dataset has {size} images after filtering; use positions 0..{size - 1}."
            )
        return order % max(size, 1)
    raise DataError(
        f"`indices` must be an integer (the first N images) or a list of image positions, "
        f"not {indices!r}."
    )

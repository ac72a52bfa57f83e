"""Which categories of a COCO file a dataset uses, and in what label order."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from detcli.errors import DataError
from detcli.suggest import did_you_mean


def read_class_names(classes: Sequence[str] | str | None) -> list[str] | None:
    """`classes` as a list: given inline, or a text file with one name per line."""
    if classes is None:
        return None
    if isinstance(classes, str):
        path = Path(classes)
        try:
            return [
                line.strip()
                for line in path.read_text(encoding="utf-8").splitlines()
                if line.strip()
            ]
        except OSError as exc:
            raise DataError(
                f"`classes` names the file {path}, which cannot be read ({exc.strerror or exc}). "
                f"Give the class names as a list, or a text file with one name per line."
            ) from None
    return [str(c) for c in classes]


def select_classes(
    ann_file: str, categories: list[dict[str, Any]], classes: Sequence[str] | str | None
) -> tuple[tuple[str, ...], list[int]]:
    """(class names, COCO category id of each label): all categories, or those in `classes`."""
    ids = [c["id"] for c in categories]
    names = [str(c["name"]) for c in categories]
    twice = [i for i, n in Counter(ids).items() if n > 1]
    if twice:
        raise DataError(
            f"Annotation file {ann_file}: category id {twice[0]} appears {Counter(ids)[twice[0]]} "
            f"times in `categories`. Give each category its own id."
        )
    wanted = read_class_names(classes)
    if wanted is None:
        return tuple(names), ids
    repeated = [n for n, k in Counter(wanted).items() if k > 1]
    if repeated:
        raise DataError(f"`classes` lists {repeated[0]!r} twice; each class must appear once.")
    by_name: dict[str, list[int]] = {}
    for name, cat_id in zip(names, ids, strict=True):
        by_name.setdefault(name, []).append(cat_id)
    cat_ids = []
    for name in wanted:
        found = by_name.get(name)
        if not found:
            raise DataError(
                f"Class {name!r} in `classes` is not a category of {ann_file}."
                f"{did_you_mean(name, by_name)} "
                f"The file's categories are: {', '.join(names) or '(none)'}. Fix `classes` in the "
                f"config or use the matching annotation file."
            )
        if len(found) > 1:
            raise DataError(
                f"Annotation file {ann_file}: category name {name!r} has several ids {found}; "
                f"a class name must name one category."
            )
        cat_ids.append(found[0])
    return tuple(wanted), cat_ids

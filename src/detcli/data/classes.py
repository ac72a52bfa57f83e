"""Which categories of a COCO file a dataset uses, in what label order, and whether a model's
class count fits them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from detcli.errors import DataError, ModelError
from detcli.suggest import did_you_mean

if TYPE_CHECKING:
    from detcli.config.settings import RunSettings


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


# Where a two-stage config sets its class count: named in messages as the key to change.
NUM_CLASSES_KEY = "model.roi_head.bbox_head.num_classes"


def check_class_count(num_classes: int | None, classes: Sequence[str] | None, where: str) -> None:
    """ModelError unless the model predicts as many classes as `classes` (of the dataset
    `where`, e.g. `data.train`) names; nothing to check when either is unknown."""
    if num_classes is None or classes is None or len(classes) == num_classes:
        return
    raise ModelError(
        f"The model predicts {num_classes} classes ({NUM_CLASSES_KEY}) but {where} has "
        f"{len(classes)}: {list(classes)}. Set num_classes to {len(classes)}, or `classes` to "
        f"the {num_classes} you mean."
    )


def config_classes(settings: RunSettings) -> list[str] | None:
    """The class names the config's test, else val, else train dataset lists inline
    (`classes` in 2.x, `metainfo.classes` in 3.x); None when none does."""
    for split in ("test", "val", "train"):
        loader = settings.loaders.get(split)
        dataset = (loader.dataset if loader is not None else None) or {}
        given = dataset.get("classes") or (dataset.get("metainfo") or {}).get("classes")
        if isinstance(given, (list, tuple)) and given:
            return [str(c) for c in given]
    return None


Color = tuple[int, int, int]


def read_palette(palette: Any, classes: Sequence[str]) -> list[Color] | None:
    """`metainfo.palette` as one (r, g, b) tuple per class; DataError if it does not fit."""
    if palette is None:
        return None
    entries = list(palette) if isinstance(palette, (list, tuple)) else None
    if entries is None or not all(_is_color(c) for c in entries):
        raise DataError(
            f"`metainfo.palette` must be a list of [r, g, b] colours (integers 0-255), one per "
            f"class; got {palette!r}. Fix the palette or remove it."
        )
    if len(entries) != len(classes):
        raise DataError(
            f"`metainfo.palette` has {len(entries)} colours for {len(classes)} classes "
            f"({', '.join(classes)}). Give exactly one [r, g, b] colour per class, in the order "
            f"of the classes, or remove the palette."
        )
    return [(int(c[0]), int(c[1]), int(c[2])) for c in entries]


def _is_color(value: Any) -> bool:
    return (
        isinstance(value, (list, tuple))
        and len(value) == 3
        and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in value)
    )

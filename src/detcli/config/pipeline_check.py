"""`detcli check` on data pipelines: 2.x habits in a 3.x pipeline, double normalisation, and
masks asked of a json without segmentations or of a transform that cannot move them."""

from __future__ import annotations

from typing import Any

from detcli.config.origins import ConfigPath
from detcli.config.settings import LoaderSettings
from detcli.data.transform_spellings import key_replacement, type_replacement

Finding = tuple[ConfigPath, str]
# Sizes in pixels a transform takes: zero or negative ones fail (or divide by zero) mid-run.
SIZE_KEYS = ("img_scale", "scale", "scales", "crop_size", "size", "size_divisor")


def pipeline_problems(model: Any, dataset: Any, loader: LoaderSettings) -> list[Finding]:
    """A 3.x pipeline must not carry 2.x keys or types (MMDetection 3.x has none of them),
    and no pipeline may normalise what the model's data_preprocessor normalises again."""
    preprocessor = (model or {}).get("data_preprocessor") if isinstance(model, dict) else None
    model_normalises = isinstance(preprocessor, dict) and preprocessor.get("mean") is not None
    found: list[Finding] = []
    for path, step in _pipeline_steps(dataset, loader.dataset_path):
        kind = step.get("type")
        if not isinstance(kind, str):
            continue
        if kind == "Normalize" and model_normalises:
            found.append(
                (
                    path,
                    "the pipeline normalises the image and so does model.data_preprocessor "
                    "(mean/std): it would be normalised twice. Keep one: 3.x configs leave "
                    "Normalize out of the pipeline.",
                )
            )
        for key in SIZE_KEYS:
            if key in step and _not_positive(step[key]):
                found.append(
                    ((*path, key), f"{kind}.{key} must hold positive sizes, got {step[key]!r}.")
                )
        if loader.spelling != "3.x":
            continue
        for key in step:
            better = key_replacement(kind, str(key))
            if better is not None:
                found.append(
                    (
                        (*path, key),
                        f"{kind}.{key} is MMDetection 2.x's spelling, and this pipeline is a 3.x "
                        f"data loader's; there it is {better}.",
                    )
                )
        better = type_replacement(kind, train=loader.split == "train")
        if better is not None and kind != "Normalize":
            found.append(
                (
                    (*path, "type"),
                    f"{kind} is an MMDetection 2.x transform, and this pipeline is a 3.x data "
                    f"loader's; 3.x uses {better}.",
                )
            )
    return found


# Transforms that move boxes but not masks yet: with with_mask they stop the run at once.
NO_MASK_SUPPORT = ("Mosaic", "MixUp", "RandomAffine")


def mask_problems(dataset: Any, path: ConfigPath) -> list[Finding]:
    """With `LoadAnnotations with_mask: true` in a dataset's pipelines: every (non-crowd)
    annotation of its json(s) needs a `segmentation`, and no step may leave the masks behind."""
    steps = _pipeline_steps(dataset, path)
    loads = [
        p for p, s in steps if s.get("type") == "LoadAnnotations" and s.get("with_mask") is True
    ]
    if not loads:
        return []
    where = ".".join(str(k) for k in (*loads[0], "with_mask"))
    found: list[Finding] = [
        (
            (*p, "type"),
            f"{s['type']} is not supported with masks yet (it would move the boxes and not the "
            f"masks); remove it, or set {where} to false to train boxes only.",
        )
        for p, s in steps
        if s.get("type") in NO_MASK_SUPPORT
    ]
    for leaf_path, leaf in _leaf_datasets(dataset, path):
        found += _segmentations_present(leaf, leaf_path, where)
    return found


def _segmentations_present(leaf: dict[str, Any], path: ConfigPath, where: str) -> list[Finding]:
    from detcli.config.paths import join_root
    from detcli.data.coco_json import read_coco_json
    from detcli.data.segments import segmentation_missing
    from detcli.errors import DataError

    ann = leaf.get("ann_file")
    if not isinstance(ann, str) or not ann:
        return []
    ann_file = join_root(leaf.get("data_root"), ann)
    try:
        data = read_coco_json(ann_file, allow_no_annotations=True)
    except (DataError, OSError):
        return []  # a missing or unreadable file is reported by the path and dataset checks
    missing = segmentation_missing(data.get("annotations") or [])
    if not missing:
        return []
    return [
        (
            (*path, "ann_file"),
            f"{ann_file}: {len(missing)} annotation(s) have no `segmentation` (first: "
            f"annotation id {missing[0]}), but {where} is true. Use an instance-segmentation "
            f"json (COCO instances_*.json), or set with_mask to false to train boxes only.",
        )
    ]


def _leaf_datasets(dataset: Any, path: ConfigPath) -> list[tuple[ConfigPath, dict[str, Any]]]:
    """The datasets with an `ann_file` under a dataset config (through wrappers)."""
    if not isinstance(dataset, dict):
        return []
    if isinstance(dataset.get("dataset"), dict):
        return _leaf_datasets(dataset["dataset"], (*path, "dataset"))
    found = [(path, dataset)] if "ann_file" in dataset else []
    for i, part in enumerate(dataset.get("datasets") or []):
        found += _leaf_datasets(part, (*path, "datasets", i))
    return found


def _not_positive(value: Any) -> bool:
    """True when a size (a number, or numbers nested in lists) is zero or negative."""
    if isinstance(value, list):
        return any(_not_positive(v) for v in value)
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value <= 0


def _pipeline_steps(dataset: Any, path: ConfigPath) -> list[tuple[ConfigPath, dict[str, Any]]]:
    """Every transform of a dataset config's pipelines (wrappers and nested TTA steps too)."""
    if not isinstance(dataset, dict):
        return []
    if isinstance(dataset.get("dataset"), dict):
        return _pipeline_steps(dataset["dataset"], (*path, "dataset"))
    found: list[tuple[ConfigPath, dict[str, Any]]] = []
    for i, part in enumerate(dataset.get("datasets") or []):
        found += _pipeline_steps(part, (*path, "datasets", i))
    found += _steps(dataset.get("pipeline"), (*path, "pipeline"))
    return found


def _steps(value: Any, path: ConfigPath) -> list[tuple[ConfigPath, dict[str, Any]]]:
    found: list[tuple[ConfigPath, dict[str, Any]]] = []
    if isinstance(value, list):
        for i, item in enumerate(value):
            found += _steps(item, (*path, i))
    elif isinstance(value, dict):
        found.append((path, value))
        found += _steps(value.get("transforms"), (*path, "transforms"))
    return found

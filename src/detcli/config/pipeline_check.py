"""`detcli check` on data pipelines: 2.x habits in a 3.x pipeline, double normalisation."""

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

"""What `detcli predict` reads: image files named directly, folders, and glob patterns.

Images go through the config's test pipeline as a small Dataset. An image that cannot be
read or decoded does not stop the run: its sample carries the error, the collate leaves it
out of the batch and `detcli.engine.inference` reports it (the `failed` batch key).
"""

from __future__ import annotations

import copy
import glob
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from torch.utils.data import DataLoader, Dataset

from detcli.config.settings import RunSettings
from detcli.data.builder import build_pipeline
from detcli.data.collate import collate_skipping_failed
from detcli.data.transforms import BadImageError, Compose
from detcli.errors import ConfigError, DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff")
_GLOB_CHARS = set("*?[")
_GT_KEYS = {"gt_bboxes", "gt_labels", "gt_bboxes_ignore", "gt_masks", "gt_semantic_seg"}


def collect_images(inputs: Sequence[str | Path]) -> list[Path]:
    """Image files from files, folders (searched recursively, by suffix) and globs; in the
    order given, each folder's and glob's files sorted, duplicates dropped."""
    if not inputs:
        raise DataError("predict needs at least one input: an image file, a folder or a glob.")
    found: list[Path] = []
    for item in inputs:
        text = str(item)
        if _GLOB_CHARS & set(text) and not Path(text).exists():
            matches = sorted(Path(m) for m in glob.glob(text, recursive=True))
            files = [f for m in matches for f in (_folder_images(m) if m.is_dir() else [m])]
            if not files:
                raise DataError(
                    f"The pattern {text!r} matches no files (quote it so your shell passes it "
                    "on unexpanded, and check the folder)."
                )
            found.extend(files)
            continue
        path = Path(text)
        if path.is_dir():
            files = _folder_images(path)
            if not files:
                raise DataError(
                    f"The folder {path} holds no images (looked for "
                    f"{', '.join(IMAGE_SUFFIXES)} in it and its subfolders)."
                )
            found.extend(files)
        elif path.exists():
            found.append(path)  # named explicitly: tried whatever its suffix
        else:
            raise DataError(f"Input {path} does not exist (not a file, folder or glob).")
    return list(dict.fromkeys(found))


def _folder_images(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    )


def predict_pipeline(settings: RunSettings) -> Compose:
    """The config's test pipeline (test split, else val), built, without its annotation steps."""
    for split in ("test", "val"):
        loader = settings.loaders.get(split)
        pipeline = _leaf_pipeline(loader.dataset if loader is not None else None)
        if pipeline:
            steps = [_without_gt(step) for step in pipeline if _keeps(step)]
            return build_pipeline(steps, where=f"data.{split} pipeline")
    raise ConfigError(
        "predict needs a test pipeline: data.test.pipeline or test_dataloader.dataset.pipeline "
        "(or the val split's) in the config, starting with LoadImageFromFile."
    )


def _leaf_pipeline(dataset_cfg: Any) -> list[Any] | None:
    if not isinstance(dataset_cfg, Mapping):
        return None
    if isinstance(dataset_cfg.get("dataset"), Mapping):
        return _leaf_pipeline(dataset_cfg["dataset"])
    if dataset_cfg.get("datasets"):
        return _leaf_pipeline(dataset_cfg["datasets"][0])
    pipeline = dataset_cfg.get("pipeline")
    return list(pipeline) if pipeline else None


def _keeps(step: Any) -> bool:
    return not (isinstance(step, Mapping) and step.get("type") == "LoadAnnotations")


def _without_gt(step: Any) -> Any:
    """A pipeline step that no longer asks for ground truth (Collect keys, inner steps)."""
    if not isinstance(step, Mapping):
        return step
    step = copy.deepcopy(dict(step))
    if step.get("type") == "Collect":
        step["keys"] = [k for k in step.get("keys", []) if k not in _GT_KEYS]
    if isinstance(step.get("transforms"), list):
        step["transforms"] = [_without_gt(t) for t in step["transforms"] if _keeps(t)]
    return step


class ImageFiles(Dataset):  # type: ignore[type-arg]
    """Image files through a test pipeline; an unreadable one yields `{"failed": message}`."""

    def __init__(self, files: Sequence[Path], pipeline: Compose):
        self.files = [Path(f) for f in files]
        self.pipeline = pipeline

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, idx: int) -> dict[str, Any]:
        path = self.files[idx]
        results = {
            "img_info": {"id": idx, "filename": str(path), "file_name": str(path)},
            "img_id": idx,
            "img_prefix": "",
            "bbox_fields": [],
        }
        try:
            sample = self.pipeline(results)
        except BadImageError as exc:
            return {"failed": _reason(str(exc))}
        if sample is None:
            return {"failed": f"The test pipeline rejected image {path}."}
        return sample


def _reason(message: str) -> str:
    """The loader's message without its advice for annotated datasets (ids, lint, prefixes)."""
    message = re.sub(r" \(image id \d+\)", "", message)
    for advice in (" Check `img_prefix`", " Replace the file"):
        message = message.split(advice)[0]
    return message


def image_loader(
    files: Sequence[Path], settings: RunSettings, batch_size: int, workers: int
) -> DataLoader:  # type: ignore[type-arg]
    """A loader over `files` with the config's test pipeline, in the order given."""
    dataset = ImageFiles(files, predict_pipeline(settings))
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        collate_fn=collate_skipping_failed,
    )

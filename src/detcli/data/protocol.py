"""What a detection dataset offers its callers (loaders, samplers, wrappers, evaluation).

The protocols are structural: a plugin's dataset satisfies them by having the members, it
inherits nothing. `DetectionDataset` is what every dataset a config can name must give;
`CocoStyleDataset` adds what COCO evaluation and result files read of a dataset of one
annotation file (`CocoDataset`). Aspect-ratio groups and per-image classes are optional
capabilities: `aspect_groups` and `image_class_matrix` read them from any dataset.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from detcli.errors import DataError

BoolMatrix = npt.NDArray[np.bool_]


@runtime_checkable
class DetectionDataset(Protocol):
    """Samples by index, and the class names a sample's labels index."""

    @property
    def CLASSES(self) -> Sequence[str]:
        """Class names in label order."""
        ...

    def __len__(self) -> int: ...

    def __getitem__(self, idx: int) -> Any:
        """The sample after the pipeline (a dict of tensors and `img_metas`), or None."""
        ...


@runtime_checkable
class CocoStyleDataset(DetectionDataset, Protocol):
    """A dataset of one COCO annotation file: what evaluation, result files and `detcli
    dataset stats` read (CocoDataset; a plugin's dataset with these members works too)."""

    @property
    def ann_file(self) -> str: ...

    @property
    def img_ids(self) -> list[int]:
        """The COCO image id of each index."""
        ...

    @property
    def cat_ids(self) -> list[int]:
        """The COCO category id of each label."""
        ...

    @property
    def coco(self) -> Any:
        """The pycocotools COCO object of the annotation file (untyped library)."""
        ...

    def get_img_info(self, idx: int) -> dict[str, Any]: ...

    def box_table(
        self,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32], npt.NDArray[np.int64], BoolMatrix]:
        """Every kept box at once: (image index, xyxy, label, crowd flag)."""
        ...

    def image_sizes(self) -> npt.NDArray[np.int64]:
        """(len, 2) width and height of each image."""
        ...

    def image_class_matrix(self) -> BoolMatrix:
        """(len, num_classes) bool: does image i hold a (non-crowd) box of class c."""
        ...


def checked_dataset(value: object, where: str) -> DetectionDataset:
    """`value` if it is a dataset; otherwise a DataError naming the argument `where`."""
    if isinstance(value, DetectionDataset):
        return value
    if isinstance(value, Mapping):
        raise DataError(
            f"{where} is a dataset config ({_short(value)}), not a dataset. In a config it needs "
            "a `type` (e.g. CocoDataset) to be built; from Python pass a built dataset "
            "(detcli.data.build_dataset(cfg))."
        )
    raise DataError(
        f"{where} must be a dataset (with CLASSES, len() and indexing); got "
        f"{type(value).__name__} {_short(value)}."
    )


def checked_coco_style(value: object, where: str) -> CocoStyleDataset:
    """`value` if it is a dataset of one COCO file; otherwise a DataError naming `where`."""
    if isinstance(value, CocoStyleDataset):
        return value
    raise DataError(
        f"{where} is a {type(value).__name__}, but this needs a dataset of one COCO annotation "
        "file (CocoDataset): its image and category ids, boxes and COCO object. Use a "
        "CocoDataset there (for a ConcatDataset, one part at a time)."
    )


def aspect_groups(dataset: DetectionDataset, group: bool = True) -> npt.NDArray[np.int64]:
    """Aspect-ratio group of each sample (1: wider than tall) from the dataset's `flag`;
    all zeros when it has none or `group` is off (one group: a plain shuffle)."""
    flag = getattr(dataset, "flag", None) if group else None
    return np.zeros(len(dataset), np.int64) if flag is None else np.asarray(flag, np.int64)


def image_class_matrix(dataset: DetectionDataset) -> BoolMatrix:
    """(len(dataset), num_classes) bool incidence of classes in images, through any wrapper."""
    method = getattr(dataset, "image_class_matrix", None)
    if method is not None:
        return np.asarray(method(), dtype=bool)
    raise DataError(
        f"{type(dataset).__name__} cannot say which classes each image holds, which class-aware "
        f"sampling and ClassBalancedDataset need; wrap a CocoDataset instead."
    )


class _HasClassMatrix(Protocol):
    def image_class_matrix(self) -> BoolMatrix: ...


class ClassIndex:
    """Mixin: MMDetection's `get_cat2imgs`, derived from the class's `image_class_matrix()`."""

    def get_cat2imgs(self: _HasClassMatrix) -> dict[int, list[int]]:
        """For each label, the indices of the images that contain it."""
        matrix = self.image_class_matrix()
        return {c: np.flatnonzero(matrix[:, c]).tolist() for c in range(matrix.shape[1])}


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."

"""Dataset wrappers: ConcatDataset, RepeatDataset, ClassBalancedDataset (LVIS repeat factors).

Each receives built datasets (`Dataset[...]` arguments: `Registry.build` builds a config's
nested `{type: ...}` first), so a wrapper is usable from Python without any config.
"""

from __future__ import annotations

import bisect
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from torch.utils.data import Dataset as _TorchDataset

from detcli.data.protocol import (
    BoolMatrix,
    ClassIndex,
    DetectionDataset,
    aspect_groups,
    checked_dataset,
    image_class_matrix,
)
from detcli.errors import DataError
from detcli.registry import DATASETS, Dataset


@DATASETS.register()
class ConcatDataset(ClassIndex, _TorchDataset):  # type: ignore[type-arg]
    """Several datasets with the same classes, one after another."""

    NO_EFFECT_ARGS: ClassVar[dict[str, str]] = {"lazy_init": "datasets are built at once"}

    def __init__(
        self,
        datasets: list[Dataset[DetectionDataset]],
        separate_eval: bool = True,
        lazy_init: bool = False,  # mmengine: defer building; detcli builds at once (no effect)
        ignore_keys: str | list[str] | None = None,
    ):
        built = [checked_dataset(d, f"ConcatDataset.datasets.{i}") for i, d in enumerate(datasets)]
        if not built:
            raise DataError("ConcatDataset needs at least one dataset in `datasets`.")
        # mmengine compares the parts' metainfo except `ignore_keys`. detcli compares the classes
        # (what a label means); `ignore_keys: [classes]` lets different ones through, named after
        # the first part's, as mmengine does.
        keys = [ignore_keys] if isinstance(ignore_keys, str) else list(ignore_keys or [])
        self.ignore_keys = keys
        classes = {tuple(d.CLASSES) for d in built}
        if len(classes) > 1 and "classes" not in self.ignore_keys:
            raise DataError(
                "ConcatDataset: the datasets have different classes "
                f"({' vs '.join(str(list(c)) for c in classes)}); set the same `classes` on each "
                f"(or `ignore_keys: [classes]` to keep the first part's class names, as mmengine)."
            )
        # torch's ConcatDataset indexes the same way; kept here so the parts stay typed as
        # detection datasets (`datasets`, `cumulative_sizes` keep torch's names).
        self.datasets = built
        self.cumulative_sizes: list[int] = np.cumsum([len(d) for d in built]).tolist()
        self.CLASSES: tuple[str, ...] = tuple(built[0].CLASSES)
        self.separate_eval = separate_eval
        self.flag = np.concatenate([aspect_groups(d) for d in built])

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx: int) -> Any:
        if not -len(self) <= idx < len(self):
            raise IndexError(f"ConcatDataset index {idx} out of range for {len(self)} samples")
        idx %= len(self)
        part = bisect.bisect_right(self.cumulative_sizes, idx)
        start = self.cumulative_sizes[part - 1] if part else 0
        return self.datasets[part][idx - start]

    def image_class_matrix(self) -> BoolMatrix:
        """Incidence matrix of every part, stacked."""
        return np.concatenate([image_class_matrix(d) for d in self.datasets])


@DATASETS.register()
class RepeatDataset(ClassIndex, _TorchDataset):  # type: ignore[type-arg]
    """The dataset `times` times over: short epochs without a costly per-epoch restart.

    `lazy_init` (mmengine) is accepted and has no effect: the wrapped dataset is built at once.
    """

    NO_EFFECT_ARGS: ClassVar[dict[str, str]] = {"lazy_init": "datasets are built at once"}

    def __init__(
        self, dataset: Dataset[DetectionDataset], times: int, lazy_init: bool = False
    ) -> None:
        if times < 1:
            raise DataError(f"RepeatDataset: times must be at least 1, got {times}.")
        self.dataset = checked_dataset(dataset, "RepeatDataset.dataset")
        self.times = times
        self.CLASSES: tuple[str, ...] = tuple(self.dataset.CLASSES)
        self._base_len = len(self.dataset)
        self.flag = np.tile(aspect_groups(self.dataset), times)

    def __getitem__(self, idx: int) -> Any:
        return self.dataset[idx % self._base_len]

    def __len__(self) -> int:
        return self.times * self._base_len

    def image_class_matrix(self) -> BoolMatrix:
        """The wrapped dataset's incidence matrix, repeated."""
        return np.tile(image_class_matrix(self.dataset), (self.times, 1))


def repeat_factors(
    matrix: BoolMatrix, oversample_thr: float, filter_empty_gt: bool = True
) -> npt.NDArray[np.float64]:
    """LVIS repeat factor per image: max over its classes of max(1, sqrt(thr / freq(class)))."""
    matrix = np.asarray(matrix, dtype=bool)
    if not filter_empty_gt:  # images without boxes count as one more class (as mmdet does)
        matrix = np.concatenate([matrix, ~matrix.any(axis=1, keepdims=True)], axis=1)
    freq = matrix.mean(axis=0) if len(matrix) else np.zeros(matrix.shape[1])
    with np.errstate(divide="ignore"):
        class_factor = np.maximum(1.0, np.sqrt(oversample_thr / freq))
    class_factor[freq == 0] = 1.0
    factors: npt.NDArray[np.float64] = np.where(matrix, class_factor[None, :], 1.0).max(
        axis=1, initial=1.0
    )
    return factors


@DATASETS.register()
class ClassBalancedDataset(ClassIndex, _TorchDataset):  # type: ignore[type-arg]
    """Repeat images with rare classes: image i appears ceil(r_i) times (LVIS, 2019)."""

    NO_EFFECT_ARGS: ClassVar[dict[str, str]] = {"lazy_init": "datasets are built at once"}

    def __init__(
        self,
        dataset: Dataset[DetectionDataset],
        oversample_thr: float,
        filter_empty_gt: bool = True,  # 2.x only; mmengine's version behaves as True
        lazy_init: bool = False,  # mmengine: defer building; detcli builds at once (no effect)
    ):
        self.dataset = checked_dataset(dataset, "ClassBalancedDataset.dataset")
        self.oversample_thr = oversample_thr
        self.CLASSES: tuple[str, ...] = tuple(self.dataset.CLASSES)
        self.repeat_factors = repeat_factors(
            image_class_matrix(self.dataset), oversample_thr, filter_empty_gt
        )
        counts = np.ceil(self.repeat_factors).astype(np.int64)
        self.repeat_indices = np.repeat(np.arange(len(self.dataset)), counts)
        self.flag = aspect_groups(self.dataset)[self.repeat_indices]

    def __getitem__(self, idx: int) -> Any:
        return self.dataset[int(self.repeat_indices[idx])]

    def __len__(self) -> int:
        return len(self.repeat_indices)

    def image_class_matrix(self) -> BoolMatrix:
        """The wrapped dataset's incidence matrix, one row per repeated index."""
        return image_class_matrix(self.dataset)[self.repeat_indices]


def leaf_datasets(dataset: DetectionDataset) -> list[DetectionDataset]:
    """The datasets a wrapper holds, unwrapped all the way down."""
    if hasattr(dataset, "datasets"):
        return [leaf for d in dataset.datasets for leaf in leaf_datasets(d)]
    if hasattr(dataset, "dataset"):
        return leaf_datasets(dataset.dataset)
    return [dataset]


__all__ = [
    "ClassBalancedDataset",
    "ConcatDataset",
    "RepeatDataset",
    "leaf_datasets",
    "repeat_factors",
]

"""Dataset wrappers: ConcatDataset, RepeatDataset, ClassBalancedDataset (LVIS repeat factors)."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from torch.utils.data import ConcatDataset as _TorchConcat
from torch.utils.data import Dataset

from detcli.errors import DataError
from detcli.registry import DATASETS, DatasetCfg


def _build(cfg: DatasetCfg | Dataset) -> Any:  # type: ignore[type-arg]
    from detcli.data.builder import build_dataset

    return cfg if isinstance(cfg, Dataset) else build_dataset(cfg)


def image_class_matrix(dataset: Any) -> np.ndarray:
    """(len(dataset), num_classes) bool incidence of classes in images, through any wrapper."""
    if hasattr(dataset, "image_class_matrix"):
        return np.asarray(dataset.image_class_matrix())
    raise DataError(
        f"{type(dataset).__name__} cannot say which classes each image holds, which class-aware "
        f"sampling and ClassBalancedDataset need; wrap a CocoDataset instead."
    )


@DATASETS.register()
class ConcatDataset(_TorchConcat):  # type: ignore[type-arg]
    """Several datasets with the same classes, one after another."""

    NO_EFFECT_ARGS: ClassVar[dict[str, str]] = {"lazy_init": "datasets are built at once"}

    def __init__(
        self,
        datasets: list[DatasetCfg],
        separate_eval: bool = True,
        lazy_init: bool = False,  # mmengine: defer building; detcli builds at once (no effect)
        ignore_keys: str | list[str] | None = None,
    ):
        built = [_build(d) for d in datasets]
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
        super().__init__(built)
        self.CLASSES: tuple[str, ...] = tuple(built[0].CLASSES)
        self.separate_eval = separate_eval
        self.flag = np.concatenate([np.asarray(d.flag) for d in built])

    def image_class_matrix(self) -> np.ndarray:
        """Incidence matrix of every part, stacked."""
        return np.concatenate([image_class_matrix(d) for d in self.datasets])

    def get_cat2imgs(self) -> dict[int, list[int]]:
        """For each label, the indices of the images that contain it."""
        m = self.image_class_matrix()
        return {c: np.flatnonzero(m[:, c]).tolist() for c in range(m.shape[1])}


@DATASETS.register()
class RepeatDataset(Dataset):  # type: ignore[type-arg]
    """The dataset `times` times over: short epochs without a costly per-epoch restart.

    `lazy_init` (mmengine) is accepted and has no effect: the wrapped dataset is built at once.
    """

    NO_EFFECT_ARGS: ClassVar[dict[str, str]] = {"lazy_init": "datasets are built at once"}

    def __init__(self, dataset: DatasetCfg, times: int, lazy_init: bool = False):
        if times < 1:
            raise DataError(f"RepeatDataset: times must be at least 1, got {times}.")
        self.dataset = _build(dataset)
        self.times = times
        self.CLASSES: tuple[str, ...] = tuple(self.dataset.CLASSES)
        self._base_len = len(self.dataset)
        self.flag = np.tile(np.asarray(self.dataset.flag), times)

    def __getitem__(self, idx: int) -> Any:
        return self.dataset[idx % self._base_len]

    def __len__(self) -> int:
        return self.times * self._base_len

    def image_class_matrix(self) -> np.ndarray:
        """The wrapped dataset's incidence matrix, repeated."""
        return np.tile(image_class_matrix(self.dataset), (self.times, 1))

    def get_cat2imgs(self) -> dict[int, list[int]]:
        """For each label, the indices of the images that contain it."""
        m = self.image_class_matrix()
        return {c: np.flatnonzero(m[:, c]).tolist() for c in range(m.shape[1])}


def repeat_factors(
    matrix: np.ndarray, oversample_thr: float, filter_empty_gt: bool = True
) -> np.ndarray:
    """LVIS repeat factor per image: max over its classes of max(1, sqrt(thr / freq(class)))."""
    matrix = np.asarray(matrix, dtype=bool)
    if not filter_empty_gt:  # images without boxes count as one more class (as mmdet does)
        matrix = np.concatenate([matrix, ~matrix.any(axis=1, keepdims=True)], axis=1)
    freq = matrix.mean(axis=0) if len(matrix) else np.zeros(matrix.shape[1])
    with np.errstate(divide="ignore"):
        class_factor = np.maximum(1.0, np.sqrt(oversample_thr / freq))
    class_factor[freq == 0] = 1.0
    return np.where(matrix, class_factor[None, :], 1.0).max(axis=1, initial=1.0)


@DATASETS.register()
class ClassBalancedDataset(Dataset):  # type: ignore[type-arg]
    """Repeat images with rare classes: image i appears ceil(r_i) times (LVIS, 2019)."""

    NO_EFFECT_ARGS: ClassVar[dict[str, str]] = {"lazy_init": "datasets are built at once"}

    def __init__(
        self,
        dataset: DatasetCfg,
        oversample_thr: float,
        filter_empty_gt: bool = True,  # 2.x only; mmengine's version behaves as True
        lazy_init: bool = False,  # mmengine: defer building; detcli builds at once (no effect)
    ):
        self.dataset = _build(dataset)
        self.oversample_thr = oversample_thr
        self.CLASSES: tuple[str, ...] = tuple(self.dataset.CLASSES)
        self.repeat_factors = repeat_factors(
            image_class_matrix(self.dataset), oversample_thr, filter_empty_gt
        )
        counts = np.ceil(self.repeat_factors).astype(np.int64)
        self.repeat_indices = np.repeat(np.arange(len(self.dataset)), counts)
        self.flag = np.asarray(self.dataset.flag)[self.repeat_indices]

    def __getitem__(self, idx: int) -> Any:
        return self.dataset[int(self.repeat_indices[idx])]

    def __len__(self) -> int:
        return len(self.repeat_indices)

    def image_class_matrix(self) -> np.ndarray:
        """The wrapped dataset's incidence matrix, one row per repeated index."""
        return image_class_matrix(self.dataset)[self.repeat_indices]

    def get_cat2imgs(self) -> dict[int, list[int]]:
        """For each label, the indices of the images that contain it."""
        m = self.image_class_matrix()
        return {c: np.flatnonzero(m[:, c]).tolist() for c in range(m.shape[1])}


def leaf_datasets(dataset: Any) -> list[Any]:
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
    "image_class_matrix",
    "leaf_datasets",
    "repeat_factors",
]

"""The config edge of data: dataset and pipeline configs to objects, `LoaderSettings` to a
DataLoader (build_dataset, build_pipeline, build_dataloader, set_epoch).

Datasets and transforms receive built parts, so this is where `DATASETS.build` and
`TRANSFORMS.build` are called. Plugins' types must be registered before (the entry points
load them: the CLI's commands, `detcli.train`, `evaluate`, `predict`).
"""

from __future__ import annotations

import copy
import random
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

import detcli.data.coco
import detcli.data.mix_dataset
import detcli.data.transforms
import detcli.data.wrappers  # noqa: F401  (registers the datasets and transforms)
from detcli.config.origins import format_path
from detcli.config.settings import LoaderSettings
from detcli.data.collate import collate, collate_skipping_failed
from detcli.data.protocol import DetectionDataset, checked_dataset
from detcli.data.samplers import (
    ClassAwareSampler,
    DistributedEvalSampler,
    DistributedGroupSampler,
    GroupSampler,
    InfiniteGroupBatchSampler,
)
from detcli.data.transforms import Compose
from detcli.errors import DataError
from detcli.registry import DATASETS, TRANSFORMS


def with_leaf_args(cfg: Mapping[str, Any], **args: Any) -> dict[str, Any]:
    """A copy of a dataset config with `args` set on every leaf dataset that accepts them."""
    cfg = dict(cfg)
    if isinstance(cfg.get("dataset"), Mapping):
        cfg["dataset"] = with_leaf_args(cfg["dataset"], **args)
    elif isinstance(cfg.get("datasets"), list):
        cfg["datasets"] = [with_leaf_args(d, **args) for d in cfg["datasets"]]
    elif "type" in cfg:
        accepted = DATASETS.signature(str(cfg["type"])).arguments
        cfg.update({k: v for k, v in args.items() if k in accepted})
    return cfg


def without_filtering(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a dataset config whose leaves keep every image (either spelling's filters off)."""
    cfg = dict(cfg)
    if isinstance(cfg.get("dataset"), Mapping):
        cfg["dataset"] = without_filtering(cfg["dataset"])
    elif isinstance(cfg.get("datasets"), list):
        cfg["datasets"] = [without_filtering(d) for d in cfg["datasets"]]
    elif "type" in cfg and "filter_cfg" in DATASETS.signature(str(cfg["type"])).arguments:
        cfg = {k: v for k, v in cfg.items() if k not in ("filter_empty_gt", "min_size")}
        cfg["filter_cfg"] = None
    return cfg


def build_dataset(
    cfg: Mapping[str, Any], *, test_mode: bool | None = None, where: str = ""
) -> DetectionDataset:
    """Build any DATASETS config (wrappers too); `test_mode` overrides every leaf's setting.

    `where` (e.g. `data.val`) names the config place in error messages.
    """
    if not isinstance(cfg, Mapping) or "type" not in cfg:
        place = f"{where}: " if where else ""
        raise DataError(f"{place}A dataset config needs a `type` (e.g. CocoDataset); got {cfg!r}.")
    cfg = copy.deepcopy(dict(cfg))
    if test_mode is not None:
        cfg = with_leaf_args(cfg, test_mode=test_mode)
    return checked_dataset(DATASETS.build(cfg, where=where), where or str(cfg["type"]))


def build_pipeline(cfgs: Sequence[Mapping[str, Any]], *, where: str = "pipeline") -> Compose:
    """A Compose of the transforms a pipeline config lists (`[{type: Resize, ...}, ...]`)."""
    return Compose([TRANSFORMS.build(c, where=f"{where}.{i}") for i, c in enumerate(cfgs)])


def _dist_info(distributed: bool) -> tuple[int, int]:
    if not distributed:
        return 0, 1
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        raise DataError(
            "build_dataloader(distributed=True) needs torch.distributed to be initialised; "
            "launch with torchrun."
        )
    return dist.get_rank(), dist.get_world_size()


def worker_init(worker_id: int) -> None:
    """Seed numpy and random in a worker from torch's per-worker seed.

    torch gives each worker `base_seed + worker_id`, with base_seed drawn from the loader's
    seeded generator at every epoch: distinct per worker, rank and epoch, and reproducible.
    (Seeding from a fixed seed instead would replay the same augmentations every epoch.)
    """
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)


def build_dataloader(
    settings: LoaderSettings,
    *,
    distributed: bool = False,
    seed: int | None = None,
    infinite: bool = False,
    batch_size: int | None = None,
    num_workers: int | None = None,
) -> DataLoader:  # type: ignore[type-arg]
    """The DataLoader a split's `LoaderSettings` describe (`config.settings.read_loaders`).

    Keyword arguments override the settings (`detcli eval --batch-size`, tests). Splits other
    than train are built in test mode (all images, nothing filtered), as MMDetection does.
    """
    train = settings.split == "train"
    dataset = build_dataset(
        settings.dataset,
        test_mode=None if train else True,
        where=format_path(settings.dataset_path),
    )
    batch = int(batch_size or settings.batch_size)
    workers = int(settings.num_workers if num_workers is None else num_workers)
    kind = "infinite" if infinite else settings.sampler
    rank, world = _dist_info(distributed)
    base_seed = 0 if seed is None else int(seed)

    sampler: Any = None
    batch_sampler: Any = None
    if kind == "infinite":
        batch_sampler = InfiniteGroupBatchSampler(
            dataset, batch, world, rank, base_seed, shuffle=True,
            group=settings.group_by_aspect_ratio or settings.spelling == "2.x",
        )  # fmt: skip
    elif kind == "class_aware":
        sampler = ClassAwareSampler(
            dataset, batch, world, rank, base_seed, settings.num_sample_class
        )
    elif kind in ("group", "random"):
        group = kind == "group"
        sampler = (
            DistributedGroupSampler(dataset, batch, world, rank, base_seed, group=group)
            if distributed
            else GroupSampler(dataset, batch, base_seed, group=group)
        )
    elif distributed:
        sampler = DistributedEvalSampler(dataset, world, rank)

    pin = torch.cuda.is_available() if settings.pin_memory is None else settings.pin_memory
    generator = torch.Generator()
    generator.manual_seed(base_seed + rank)
    return DataLoader(
        # torch types this as its Dataset class; what it uses is len() and indexing
        dataset,  # type: ignore[arg-type]
        batch_size=1 if batch_sampler is not None else batch,
        sampler=sampler,
        batch_sampler=batch_sampler,
        shuffle=False,
        num_workers=workers,
        collate_fn=collate if train else collate_skipping_failed,
        pin_memory=pin,
        drop_last=settings.drop_last and batch_sampler is None,
        persistent_workers=settings.persistent_workers and workers > 0,
        prefetch_factor=settings.prefetch_factor if workers > 0 else None,
        worker_init_fn=worker_init if workers > 0 else None,
        generator=generator,
    )


def set_epoch(loader: DataLoader, epoch: int) -> None:  # type: ignore[type-arg]
    """Re-seed the loader's sampler (or batch sampler) for `epoch`."""
    for sampler in (loader.sampler, loader.batch_sampler):
        reseed = getattr(sampler, "set_epoch", None)
        if reseed is not None:
            reseed(epoch)

"""build_dataset, build_dataloader and set_epoch: from `cfg.data` to a DataLoader."""

from __future__ import annotations

import copy
import random
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

import detcli.data.coco
import detcli.data.transforms
import detcli.data.wrappers  # noqa: F401  (registers the datasets and transforms)
from detcli.data.collate import collate
from detcli.data.samplers import (
    ClassAwareSampler,
    DistributedEvalSampler,
    DistributedGroupSampler,
    GroupSampler,
    InfiniteGroupBatchSampler,
)
from detcli.errors import DataError
from detcli.registry import DATASETS

SPLITS = ("train", "val", "test")


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


def build_dataset(cfg: Mapping[str, Any], *, test_mode: bool | None = None) -> Any:
    """Build any DATASETS config (wrappers too); `test_mode` overrides every leaf's setting."""
    from detcli.plugins import load_plugins

    load_plugins()  # plugin datasets and transforms by name
    if not isinstance(cfg, Mapping) or "type" not in cfg:
        raise DataError(f"A dataset config needs a `type` (e.g. CocoDataset); got {cfg!r}.")
    cfg = copy.deepcopy(dict(cfg))
    if test_mode is not None:
        cfg = with_leaf_args(cfg, test_mode=test_mode)
    return DATASETS.build(cfg)


def _loader_setting(data_cfg: Mapping[str, Any], split: str, key: str, default: Any) -> Any:
    """`data.<split>_dataloader.<key>`, else `data.<key>` (batch: train only), else default."""
    specific = data_cfg.get(f"{split}_dataloader") or {}
    if key in specific:
        return specific[key]
    if split == "train" or key != "samples_per_gpu":
        return data_cfg.get(key, default)
    return default  # mmdet evaluates one image per GPU unless told otherwise


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
    data_cfg: Mapping[str, Any],
    split: str,
    *,
    distributed: bool = False,
    seed: int | None = None,
    shuffle: bool | None = None,
    infinite: bool = False,
    samples_per_gpu: int | None = None,
    workers_per_gpu: int | None = None,
) -> DataLoader:  # type: ignore[type-arg]
    """The DataLoader of `data.<split>`: grouped and shuffled for train; eval: all, in order."""
    if split not in SPLITS:
        raise DataError(f"Unknown data split {split!r}; use one of {', '.join(SPLITS)}.")
    if split not in data_cfg:
        raise DataError(
            f"The config has no `data.{split}` dataset; add one to use split {split!r}."
        )
    train = split == "train"
    dataset = build_dataset(data_cfg[split], test_mode=None if train else True)
    batch = int(samples_per_gpu or _loader_setting(data_cfg, split, "samples_per_gpu", 1))
    workers = int(
        workers_per_gpu if workers_per_gpu is not None
        else _loader_setting(data_cfg, split, "workers_per_gpu", 2)
    )  # fmt: skip
    shuffle = train if shuffle is None else shuffle
    rank, world = _dist_info(distributed)
    base_seed = 0 if seed is None else int(seed)
    class_aware = _loader_setting(data_cfg, split, "class_aware_sampler", None)

    sampler: Any = None
    batch_sampler: Any = None
    if infinite:
        batch_sampler = InfiniteGroupBatchSampler(
            dataset, batch, world, rank, base_seed, shuffle=shuffle, group=shuffle
        )
    elif class_aware:
        sampler = ClassAwareSampler(
            dataset, batch, world, rank, base_seed, int(class_aware.get("num_sample_class", 1))
        )
    elif shuffle:
        sampler = (
            DistributedGroupSampler(dataset, batch, world, rank, base_seed)
            if distributed
            else GroupSampler(dataset, batch, base_seed)
        )
    elif distributed:
        sampler = DistributedEvalSampler(dataset, world, rank)

    persistent = bool(_loader_setting(data_cfg, split, "persistent_workers", False)) and workers > 0
    pin = bool(_loader_setting(data_cfg, split, "pin_memory", torch.cuda.is_available()))
    generator = torch.Generator()
    generator.manual_seed(base_seed + rank)
    return DataLoader(
        dataset,
        batch_size=1 if batch_sampler is not None else batch,
        sampler=sampler,
        batch_sampler=batch_sampler,
        shuffle=False,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=pin,
        persistent_workers=persistent,
        worker_init_fn=worker_init if workers > 0 else None,
        generator=generator,
    )


def set_epoch(loader: DataLoader, epoch: int) -> None:  # type: ignore[type-arg]
    """Re-seed the loader's sampler (or batch sampler) for `epoch`."""
    for sampler in (loader.sampler, loader.batch_sampler):
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)

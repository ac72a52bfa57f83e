"""Data loaders, one per split: batch size, workers, sampling, and the dataset config.

2.x: `data: {samples_per_gpu, workers_per_gpu, persistent_workers, train, val, test,
<split>_dataloader: {samples_per_gpu, workers_per_gpu, ...}}`; a `<split>_dataloader` value wins
over the shared one, and val/test take one image per batch unless their own says otherwise
(MMDetection 2.x). 3.x: `<split>_dataloader: {batch_size, num_workers, persistent_workers,
pin_memory, drop_last, sampler, batch_sampler, dataset}`. Either way the result is one
`LoaderSettings` per split, the only place a batch size is read.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Literal

from detcli.config.origins import ConfigPath, format_path
from detcli.config.settings.reader import Key, Section, SettingsReader

SPLITS = ("train", "val", "test")
SamplerKind = Literal["group", "random", "sequential", "infinite", "class_aware"]

_COMMON_2X = {
    "samples_per_gpu": Key(int),
    "workers_per_gpu": Key(int),
    "persistent_workers": Key(bool),
    "pin_memory": Key(bool),
    "shuffle": Key(bool),
    "class_aware_sampler": Key(dict[str, Any] | None),
}
DATA_2X = Section(
    {
        **_COMMON_2X,
        "train": Key(dict[str, Any] | None),
        "val": Key(dict[str, Any] | None),
        "test": Key(dict[str, Any] | None),
        "train_dataloader": Key(dict[str, Any] | None),
        "val_dataloader": Key(dict[str, Any] | None),
        "test_dataloader": Key(dict[str, Any] | None),
    }
)
SPLIT_LOADER_2X = Section(_COMMON_2X)
LOADER_3X = Section(
    {
        "batch_size": Key(int),
        "num_workers": Key(int),
        "persistent_workers": Key(bool),
        "pin_memory": Key(bool),
        "drop_last": Key(bool),
        "prefetch_factor": Key(int | None),
        "sampler": Key(dict[str, Any] | None),
        "batch_sampler": Key(dict[str, Any] | None),
        "dataset": Key(dict[str, Any]),
        "collate_fn": Key(
            dict[str, Any] | None,
            "detcli pads each batch with its own collate (mmengine's pseudo_collate + "
            "DetDataPreprocessor do the same together)",
        ),
        "worker_init_fn": Key(dict[str, Any] | None, "detcli seeds each worker itself"),
    },
    other_spelling={"samples_per_gpu": "batch_size", "workers_per_gpu": "num_workers"},
)
SAMPLER = Section(
    {
        "type": Key(Literal["DefaultSampler", "InfiniteSampler", "ClassAwareSampler"]),
        "shuffle": Key(bool),
        "seed": Key(int | None, "the run's seed (--seed / `seed`) seeds every sampler"),
        "round_up": Key(bool, "evaluation covers every image exactly once in detcli"),
        "num_sample_class": Key(int),
    }
)
BATCH_SAMPLER = Section(
    {
        "type": Key(Literal["AspectRatioBatchSampler"]),
        "drop_last": Key(bool),
    }
)


@dataclass(frozen=True)
class LoaderSettings:
    """Everything that turns a dataset config into the batches of one split."""

    split: str
    dataset: dict[str, Any]  # a DATASETS component config
    dataset_path: ConfigPath  # where it is in the config, for messages
    batch_size: int = 1
    num_workers: int = 2
    persistent_workers: bool = False
    pin_memory: bool | None = None  # None: when CUDA is available
    drop_last: bool = False
    prefetch_factor: int | None = None
    sampler: SamplerKind = "sequential"
    group_by_aspect_ratio: bool = False
    num_sample_class: int = 1  # ClassAwareSampler
    spelling: Literal["2.x", "3.x"] = "2.x"

    @property
    def batch_path(self) -> str:
        """The config key that sets this split's batch size, for messages."""
        if self.spelling == "3.x":
            return f"{self.split}_dataloader.batch_size"
        return "data.samples_per_gpu"


def read_loaders(reader: SettingsReader) -> dict[str, LoaderSettings]:
    """Every split the config defines, from `data` (2.x) or `<split>_dataloader` (3.x)."""
    data = reader.section(("data",), DATA_2X)
    loaders: dict[str, LoaderSettings] = {}
    for split in SPLITS:
        v2 = data.get(split)
        v3 = reader.get((f"{split}_dataloader",), None)
        if v2 is not None and v3 is not None:
            reader.one_of(("data", split), (f"{split}_dataloader",))
        if v3 is not None:
            loader = _read_3x(reader, split)
            if v2 is None and data.get(f"{split}_dataloader"):
                reader.one_of(("data", f"{split}_dataloader"), (f"{split}_dataloader",))
        elif v2 is not None:
            loader = _read_2x(reader, data, split)
        else:
            continue
        if loader is not None:
            loaders[split] = loader
    return loaders


def _read_2x(reader: SettingsReader, data: dict[str, Any], split: str) -> LoaderSettings | None:
    own = reader.section(("data", f"{split}_dataloader"), SPLIT_LOADER_2X)
    train = split == "train"

    def setting(key: str, default: Any) -> tuple[ConfigPath, Any]:
        if key in own:
            return ("data", f"{split}_dataloader", key), own[key]
        if key in data and (train or key != "samples_per_gpu"):
            return ("data", key), data[key]
        return ("data", key), default  # MMDetection 2.x tests one image per GPU by default

    batch = reader.positive_int(*setting("samples_per_gpu", 1)) or 1
    workers_path, workers = setting("workers_per_gpu", 2)
    workers = reader.positive_int(workers_path, workers, zero_ok=True)
    class_aware = setting("class_aware_sampler", None)[1]
    shuffle = setting("shuffle", train)[1]
    kind: SamplerKind = "class_aware" if class_aware else ("group" if shuffle else "sequential")
    dataset = data[split]
    if not isinstance(dataset, dict):
        reader.problem(("data", split), f"data.{split} must be a dataset mapping with `type`.")
        return None
    return LoaderSettings(
        split=split,
        dataset=copy.deepcopy(dataset),
        dataset_path=("data", split),
        batch_size=batch,
        num_workers=2 if workers is None else workers,
        persistent_workers=bool(setting("persistent_workers", False)[1]),
        pin_memory=setting("pin_memory", None)[1],
        sampler=kind,
        group_by_aspect_ratio=kind == "group",
        num_sample_class=int((class_aware or {}).get("num_sample_class", 1)),
    )


def _read_3x(reader: SettingsReader, split: str) -> LoaderSettings | None:
    path: ConfigPath = (f"{split}_dataloader",)
    cfg = reader.section(path, LOADER_3X)
    sampler = reader.section((*path, "sampler"), SAMPLER)
    batch_sampler = reader.section((*path, "batch_sampler"), BATCH_SAMPLER)
    dataset = cfg.get("dataset")
    if not isinstance(dataset, dict):
        reader.problem(
            (*path, "dataset"), f"{format_path(path)} needs a `dataset` (e.g. type: CocoDataset)."
        )
        return None
    batch = reader.positive_int((*path, "batch_size"), cfg.get("batch_size", 1)) or 1
    workers = reader.positive_int((*path, "num_workers"), cfg.get("num_workers", 0), zero_ok=True)
    kind = sampler.get("type", "DefaultSampler")
    shuffle = bool(sampler.get("shuffle", True)) if sampler else split == "train"
    if batch_sampler and "type" not in batch_sampler:
        reader.problem(
            (*path, "batch_sampler"), "batch_sampler needs `type: AspectRatioBatchSampler`."
        )
    grouped = bool(batch_sampler)
    chosen: SamplerKind
    if kind == "InfiniteSampler":
        chosen = "infinite"
    elif kind == "ClassAwareSampler":
        chosen = "class_aware"
    else:
        chosen = ("group" if grouped else "random") if shuffle else "sequential"
    if grouped and not shuffle:
        reader.note(
            (*path, "batch_sampler"),
            "accepted, no effect in detcli: an unshuffled split is read in order, one "
            "aspect-ratio group per batch does not change its results.",
        )
    return LoaderSettings(
        split=split,
        dataset=_with_3x_defaults(copy.deepcopy(dataset)),
        dataset_path=(*path, "dataset"),
        batch_size=batch,
        num_workers=0 if workers is None else workers,
        persistent_workers=bool(cfg.get("persistent_workers", False)),
        pin_memory=bool(cfg.get("pin_memory", False)),
        drop_last=bool(cfg.get("drop_last", False) or batch_sampler.get("drop_last", False)),
        prefetch_factor=cfg.get("prefetch_factor"),
        sampler=chosen,
        group_by_aspect_ratio=grouped,
        num_sample_class=int(sampler.get("num_sample_class", 1)),
        spelling="3.x",
    )


def _with_3x_defaults(dataset: dict[str, Any]) -> dict[str, Any]:
    """mmengine datasets filter nothing unless `filter_cfg` says so (2.x ones filter by default)."""
    if isinstance(dataset.get("dataset"), dict):
        dataset["dataset"] = _with_3x_defaults(dataset["dataset"])
    elif isinstance(dataset.get("datasets"), list):
        dataset["datasets"] = [
            _with_3x_defaults(d) if isinstance(d, dict) else d for d in dataset["datasets"]
        ]
    elif dataset.get("type") == "CocoDataset" and "filter_empty_gt" not in dataset:
        dataset.setdefault("filter_cfg", None)
    return dataset

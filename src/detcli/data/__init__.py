"""Data: COCO datasets, transform pipelines, dataset wrappers, samplers, the loader, synthetic sets.

`from detcli.data import build_dataset, build_dataloader, set_epoch`. The names load on first
use, so `detcli.data.synthetic` (and the CLI that writes synthetic sets) never imports torch.
"""

from __future__ import annotations

from detcli.lazy import lazy_attributes

_LAZY = {
    "build_dataset": "detcli.data.builder",
    "build_dataloader": "detcli.data.builder",
    "set_epoch": "detcli.data.builder",
    "collate": "detcli.data.collate",
    "CocoDataset": "detcli.data.coco",
    "ConcatDataset": "detcli.data.wrappers",
    "RepeatDataset": "detcli.data.wrappers",
    "ClassBalancedDataset": "detcli.data.wrappers",
    "MultiImageMixDataset": "detcli.data.mix_dataset",
    "Compose": "detcli.data.transforms",
    "write_shapes_coco": "detcli.data.synthetic",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)

"""Data: COCO datasets, transform pipelines, dataset wrappers, samplers, the loader, synthetic sets.

`from detcli.data import build_dataset, build_dataloader, set_epoch`. The names load on first
use, so `detcli.data.synthetic` (and the CLI that writes synthetic sets) never imports torch.
"""

from __future__ import annotations

from detcli.lazy import lazy_attributes

__getattr__, __dir__, __all__ = lazy_attributes(
    __name__,
    {
        "detcli.data.builder": ["build_dataset", "build_pipeline", "build_dataloader", "set_epoch"],
        "detcli.data.collate": ["collate"],
        "detcli.data.coco": ["CocoDataset"],
        "detcli.data.wrappers": ["ConcatDataset", "RepeatDataset", "ClassBalancedDataset"],
        "detcli.data.mix_dataset": ["MultiImageMixDataset"],
        "detcli.data.protocol": ["DetectionDataset", "CocoStyleDataset"],
        "detcli.data.transforms": ["Compose"],
        "detcli.data.synthetic": ["write_shapes_coco"],
    },
)

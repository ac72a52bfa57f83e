"""build_dataloader and collate: batches per structures.py, eval order, workers, epochs."""

from __future__ import annotations

import torch
from data_helpers import TEST_PIPELINE, coco_cfg

from detcli.data import build_dataloader, set_epoch
from detcli.data.collate import collate


def split_loader(data: dict, split: str):
    """The LoaderSettings of `split` of a config whose `data` section is `data`."""
    from detcli.config.settings import read_run_settings

    return read_run_settings({"data": data}).loader(split)


def data_cfg(shapes, **extra):
    classes = list(shapes.classes)
    return {
        "samples_per_gpu": 4,
        "workers_per_gpu": 0,
        "train": coco_cfg(shapes.train_ann, shapes.train_img, classes=classes),
        "val": coco_cfg(shapes.val_ann, shapes.val_img, TEST_PIPELINE, classes=classes),
        **extra,
    }


def test_train_batches_are_padded_tensors_with_per_image_targets(shapes_coco):
    loader = build_dataloader(split_loader(data_cfg(shapes_coco), "train"), seed=0)
    assert len(loader) == 4
    batch = next(iter(loader))
    assert batch["img"].shape == (4, 3, 96, 96) and batch["img"].dtype == torch.float32
    assert len(batch["gt_bboxes"]) == len(batch["gt_labels"]) == len(batch["img_metas"]) == 4
    for boxes, labels, meta in zip(
        batch["gt_bboxes"], batch["gt_labels"], batch["img_metas"], strict=True
    ):
        assert boxes.shape == (len(labels), 4) and labels.dtype == torch.int64
        assert meta["batch_input_shape"] == (96, 96)
        assert labels.min() >= 0 and labels.max() < 3


def test_collate_pads_bottom_right_and_keeps_each_image(shapes_coco):
    a = {
        "img": torch.ones(3, 64, 96),
        "img_metas": {"img_id": 1},
        "gt_bboxes": torch.zeros(2, 4),
        "gt_labels": torch.zeros(2, dtype=torch.int64),
    }
    b = {
        "img": torch.full((3, 96, 32), 2.0),
        "img_metas": {"img_id": 2},
        "gt_bboxes": torch.zeros(0, 4),
        "gt_labels": torch.zeros(0, dtype=torch.int64),
    }
    batch = collate([a, b])
    assert batch["img"].shape == (2, 3, 96, 96)
    assert batch["img"][0, :, 64:].abs().sum() == 0 and batch["img"][0, :, :64, :96].eq(1).all()
    assert batch["img"][1, :, :, 32:].abs().sum() == 0
    assert [m["batch_input_shape"] for m in batch["img_metas"]] == [(96, 96)] * 2
    assert [len(x) for x in batch["gt_bboxes"]] == [2, 0]
    views = collate([{"img": [a["img"], b["img"]], "img_metas": [{"v": 0}, {"v": 1}]}] * 3)
    assert [v.shape for v in views["img"]] == [(3, 3, 64, 96), (3, 3, 96, 32)]
    assert [[m["v"] for m in per_view] for per_view in views["img_metas"]] == [[0] * 3, [1] * 3]


def test_val_keeps_every_image_in_dataset_order(shapes_coco):
    loader = build_dataloader(split_loader(data_cfg(shapes_coco), "val"), batch_size=3)
    ids = []
    for batch in loader:
        assert isinstance(batch["img"], list) and len(batch["img"]) == 1  # one view
        ids += [m["img_id"] for m in batch["img_metas"][0]]
    assert ids == loader.dataset.img_ids == list(range(1, 9))
    assert (
        build_dataloader(split_loader(data_cfg(shapes_coco), "val")).batch_size == 1
    )  # mmdet's default


def test_seeded_workers_reproduce_augmentation_and_epochs_reshuffle(shapes_coco):
    cfg = data_cfg(shapes_coco, workers_per_gpu=2)

    def first_epochs(loader):
        out = []
        for epoch in range(2):
            set_epoch(loader, epoch)
            out.append([(m["img_id"], m["flip"]) for b in loader for m in b["img_metas"]])
        return out

    a = first_epochs(build_dataloader(split_loader(cfg, "train"), seed=7))
    b = first_epochs(build_dataloader(split_loader(cfg, "train"), seed=7))
    assert a == b  # same seed: same order and same random flips, with 2 worker processes
    assert a[0] != a[1]  # the next epoch is a new shuffle ...
    assert [f for _, f in a[0]] != [f for _, f in a[1]]  # ... with new random augmentation
    assert any(flip for _, flip in a[0]) and not all(flip for _, flip in a[0])


def test_infinite_and_class_aware_loaders(shapes_coco):
    loader = build_dataloader(
        split_loader(data_cfg(shapes_coco), "train"), infinite=True, batch_size=2
    )
    it = iter(loader)
    assert sum(len(next(it)["img_metas"]) for _ in range(12)) == 24  # beyond the 16 images
    aware = build_dataloader(
        split_loader(
            data_cfg(
                shapes_coco, train_dataloader={"class_aware_sampler": {"num_sample_class": 1}}
            ),
            "train",
        ),
    )
    assert type(aware.sampler).__name__ == "ClassAwareSampler" and len(aware.sampler) == 16


def test_distributed_loaders_use_the_process_group(shapes_coco, tmp_path):
    import torch.distributed as dist

    dist.init_process_group(
        "gloo", init_method=f"file://{tmp_path}/rendezvous", rank=0, world_size=1
    )
    try:
        train = build_dataloader(
            split_loader(data_cfg(shapes_coco), "train"), distributed=True, seed=3
        )
        val = build_dataloader(split_loader(data_cfg(shapes_coco), "val"), distributed=True)
    finally:
        dist.destroy_process_group()
    assert type(train.sampler).__name__ == "DistributedGroupSampler" and train.sampler.seed == 3
    assert type(val.sampler).__name__ == "DistributedEvalSampler" and len(val.sampler) == 8


def test_loader_settings_from_config(shapes_coco):
    cfg = data_cfg(
        shapes_coco,
        workers_per_gpu=2,
        persistent_workers=True,
        val_dataloader={"samples_per_gpu": 5},
    )
    train = build_dataloader(split_loader(cfg, "train"))
    assert train.num_workers == 2 and train.persistent_workers and train.batch_size == 4
    assert train.pin_memory == torch.cuda.is_available()
    assert build_dataloader(split_loader(cfg, "val")).batch_size == 5
    assert (
        build_dataloader(split_loader(cfg, "train"), batch_size=2, num_workers=0).num_workers == 0
    )

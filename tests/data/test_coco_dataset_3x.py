"""CocoDataset and wrappers with MMDetection 3.x (mmengine) arguments, on real files."""

from __future__ import annotations

import pytest
import torch
from data_helpers import CATEGORIES, box, image, write_coco

from detcli.data import build_dataset
from detcli.errors import DataError

PIPELINE_3X = [
    {"type": "LoadImageFromFile", "backend_args": None},
    {"type": "LoadAnnotations", "with_bbox": True},
    {"type": "Resize", "scale": [128, 96], "keep_ratio": True},
    {"type": "RandomFlip", "prob": 0.5},
    {"type": "PackDetInputs"},
]
# mmdet 3.3's coco_detection test_pipeline: annotations loaded after Resize, flip not in meta
TEST_PIPELINE_3X = [
    {"type": "LoadImageFromFile", "backend_args": None},
    {"type": "Resize", "scale": [1333, 800], "keep_ratio": True},
    {"type": "LoadAnnotations", "with_bbox": True},
    {
        "type": "PackDetInputs",
        "meta_keys": ["img_id", "img_path", "ori_shape", "img_shape", "scale_factor"],
    },
]


@pytest.fixture
def root(tmp_path):
    """data_root/annotations/train.json, images in data_root/train2017/ (as mmdet lays COCO)."""
    images = [image(10), image(11), image(12), image(13, width=20, height=20)]
    anns = [
        box(1, 10, 3, [4, 6, 20, 10]),
        box(2, 11, 7, [10, 10, 5, 5]),
        box(3, 13, 1, [1, 1, 5, 5]),  # image 12 has no box; 13 is below min_size 32
    ]
    ann, img_dir = write_coco(tmp_path, images, anns, CATEGORIES)
    (tmp_path / "annotations").mkdir()
    ann.rename(tmp_path / "annotations" / "train.json")
    img_dir.rename(tmp_path / "train2017")
    return tmp_path


def cfg_3x(root, pipeline=PIPELINE_3X, **kw):
    return {
        "type": "CocoDataset",
        "data_root": f"{root}/",
        "ann_file": "annotations/train.json",
        "data_prefix": {"img": "train2017/"},
        "pipeline": pipeline,
        **kw,
    }


def test_data_root_joins_ann_file_and_data_prefix_and_images_load(root):
    ds = build_dataset(cfg_3x(root, filter_cfg={"filter_empty_gt": True, "min_size": 32}))
    assert ds.ann_file == f"{root}/annotations/train.json"
    assert ds.img_prefix == f"{root}/train2017/"
    assert ds.img_ids == [10, 11]
    sample = ds[0]
    assert sample["img_metas"]["filename"] == f"{root}/train2017/0010.png"
    assert sample["img_metas"]["img_shape"] == (96, 128, 3)  # 64x48 -> factor 2
    # an absolute prefix stays absolute, as in mmengine's _join_prefix
    absolute = build_dataset(cfg_3x(root, data_prefix={"img": str(root / "train2017")}))
    assert absolute.img_prefix == str(root / "train2017")
    # an empty prefix means the images lie under data_root itself
    assert build_dataset(cfg_3x(root, data_prefix={"img": ""})).img_prefix == f"{root}/"


def test_filter_cfg_none_or_absent_in_3x_keeps_every_image(root):
    # mmdet 3.x CocoDataset.filter_data: no filter_cfg -> nothing filtered
    assert build_dataset(cfg_3x(root)).img_ids == [10, 11, 12, 13]
    assert build_dataset(cfg_3x(root, filter_cfg=None)).img_ids == [10, 11, 12, 13]
    # the 2.x spelling without filter arguments still filters (filter_empty_gt true, min_size 32)
    two = dict(cfg_3x(root), img_prefix="train2017/")
    del two["data_prefix"]
    assert build_dataset(two).img_ids == [10, 11]
    # filter_cfg keys left out do not filter (mmdet 3.x defaults False and 0)
    assert build_dataset(cfg_3x(root, filter_cfg={"min_size": 32})).img_ids == [10, 11, 12]
    assert build_dataset(cfg_3x(root, filter_cfg={"filter_empty_gt": True})).img_ids == [
        10,
        11,
        13,
    ]
    # test mode never filters, whatever filter_cfg says
    test = build_dataset(cfg_3x(root, filter_cfg={"filter_empty_gt": True}), test_mode=True)
    assert test.img_ids == [10, 11, 12, 13]


def test_metainfo_classes_and_palette(root):
    meta = {"classes": ["bird", "dog"], "palette": [[255, 0, 0], [0, 128, 255]]}
    ds = build_dataset(cfg_3x(root, metainfo=meta))
    assert ds.CLASSES == ("bird", "dog") and ds.cat_ids == [7, 3]
    assert ds.PALETTE == [(255, 0, 0), (0, 128, 255)]
    assert ds.metainfo["palette"] == ds.PALETTE and ds.metainfo["classes"] == ds.CLASSES
    assert ds.get_ann_info(0)["labels"].tolist() == [1]  # image 10's dog
    with pytest.raises(DataError, match="2 colours for 3 classes"):
        build_dataset(cfg_3x(root, metainfo={"palette": [[1, 2, 3], [4, 5, 6]]}))
    with pytest.raises(DataError, match=r"\[r, g, b\]"):
        build_dataset(cfg_3x(root, metainfo={"classes": ["dog"], "palette": [[1, 2]]}))


def test_indices_take_a_subset_after_filtering(root):
    first = build_dataset(cfg_3x(root, indices=2))
    assert first.img_ids == [10, 11] and len(first) == 2
    picked = build_dataset(cfg_3x(root, indices=[3, 0]))
    assert picked.img_ids == [13, 10]
    # boxes follow their image
    assert picked.get_ann_info(0)["bboxes"].tolist() == [[1, 1, 6, 6]]
    assert picked.get_ann_info(1)["labels"].tolist() == [1]
    assert picked.flag.tolist() == [0, 1]
    with pytest.raises(DataError, match="indices"):
        build_dataset(cfg_3x(root, indices=[7]))


def test_spellings_given_twice_are_refused(root):
    with pytest.raises(DataError, match=r"img_prefix.*data_prefix.img"):
        build_dataset(cfg_3x(root, img_prefix="train2017/"))
    with pytest.raises(DataError, match=r"`classes`.*`metainfo.classes`"):
        build_dataset(cfg_3x(root, classes=["dog"], metainfo={"classes": ["dog"]}))
    with pytest.raises(DataError, match=r"`filter_empty_gt`.*`filter_cfg`"):
        build_dataset(cfg_3x(root, filter_empty_gt=True, filter_cfg={"min_size": 1}))
    with pytest.raises(DataError, match="Did you mean 'min_size'"):
        build_dataset(cfg_3x(root, filter_cfg={"min_sise": 1}))
    with pytest.raises(DataError, match=r"data_prefix\.img_path"):
        build_dataset(cfg_3x(root, data_prefix={"img_path": "train2017/"}))


def test_mmengine_arguments_are_accepted(root):
    ds = build_dataset(
        cfg_3x(
            root,
            backend_args={"backend": "local"},
            lazy_init=True,
            serialize_data=False,
            data_prefix={"img": "train2017/", "seg": "stuff/"},
        )
    )
    assert len(ds) == 4 and ds.data_prefix["seg"] == f"{root}/stuff/"
    with pytest.raises(DataError, match="petrel"):
        build_dataset(cfg_3x(root, backend_args={"backend": "petrel"}))


def test_mmdet_3x_test_pipeline_packs_original_boxes_and_no_flip(root):
    ds = build_dataset(cfg_3x(root, TEST_PIPELINE_3X, test_mode=True))
    sample = ds[0]
    meta = sample["img_metas"]
    assert meta["flip"] is False and meta["flip_direction"] is None
    assert meta["img_path"] == meta["filename"] == f"{root}/train2017/0010.png"
    assert meta["ori_shape"] == (48, 64, 3) and meta["img_shape"] == (800, 1067, 3)
    # LoadAnnotations after Resize: the packed boxes stay in original pixels (mmdet 3.x eval)
    assert sample["gt_bboxes"].tolist() == [[4.0, 6.0, 24.0, 16.0]]
    assert sample["img"].dtype == torch.float32


def test_wrappers_take_mmengine_arguments(root, tmp_path):
    rep = build_dataset(
        {"type": "RepeatDataset", "times": 2, "lazy_init": True, "dataset": cfg_3x(root)}
    )
    assert len(rep) == 8
    cbd = build_dataset(
        {
            "type": "ClassBalancedDataset",
            "oversample_thr": 0.5,
            "lazy_init": False,
            "dataset": cfg_3x(root),
        }
    )
    assert len(cbd) >= 4
    narrowed = cfg_3x(root, metainfo={"classes": ["dog"]})
    with pytest.raises(DataError, match="different classes"):
        build_dataset({"type": "ConcatDataset", "datasets": [cfg_3x(root), narrowed]})
    cat = build_dataset(
        {
            "type": "ConcatDataset",
            "datasets": [cfg_3x(root), narrowed],
            "ignore_keys": ["classes"],
            "lazy_init": False,
        }
    )
    assert len(cat) == 8 and cat.CLASSES == ("cat", "dog", "bird")

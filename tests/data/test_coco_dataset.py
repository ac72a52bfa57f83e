"""CocoDataset on real files: labels, class restriction, crowd as ignore, filtering, test mode."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from data_helpers import CATEGORIES, TEST_PIPELINE, TRAIN_PIPELINE, box, coco_cfg, image, write_coco

from detcli.data import build_dataset
from detcli.data.coco import DataWarning
from detcli.errors import DataError


@pytest.fixture
def coco(tmp_path):
    images = [image(10), image(11), image(12), image(13, width=20, height=20), image(14)]
    anns = [
        box(1, 10, 3, [4, 6, 20, 10]),  # dog
        box(2, 10, 1, [0, 0, 8, 8]),  # cat
        box(3, 10, 1, [30, 20, 10, 10], iscrowd=1),  # crowd: an ignore region
        box(4, 11, 7, [10, 10, 5, 5]),  # bird only
        box(5, 12, 1, [10, 10, 0.5, 10]),  # narrower than 1 px: unusable
        box(6, 12, 3, [70, 10, 5, 5]),  # entirely right of the 64 px image: unusable
        box(7, 13, 1, [1, 1, 5, 5]),  # on a 20x20 image: below min_size 32
        box(8, 14, 3, [0, 0, 10, 10], iscrowd=1),  # only a crowd region
        box(9, 99, 1, [0, 0, 10, 10]),  # unknown image
    ]
    return write_coco(tmp_path, images, anns, CATEGORIES)


def test_labels_follow_category_order_and_crowd_is_ignore(coco):
    ann, prefix = coco
    ds = build_dataset(coco_cfg(ann, prefix))
    assert ds.CLASSES == ("cat", "dog", "bird") and ds.cat_ids == [1, 3, 7]
    assert ds.img_ids == [10, 11]  # 12 (no usable box), 13 (small), 14 (crowd only) filtered
    info = ds.get_ann_info(0)
    assert info["bboxes"].dtype == np.float32 and info["labels"].dtype == np.int64
    assert info["bboxes"].tolist() == [[4, 6, 24, 16], [0, 0, 8, 8]]
    assert info["labels"].tolist() == [1, 0]
    assert info["bboxes_ignore"].tolist() == [[30, 20, 40, 30]]
    assert ds.get_ann_info(1)["labels"].tolist() == [2]
    assert ds.coco.getAnnIds(imgIds=[10]) == [1, 2, 3]  # the pycocotools object of the file
    sample = ds[0]
    assert set(sample) == {"img", "img_metas", "gt_bboxes", "gt_labels", "gt_bboxes_ignore"}
    assert sample["img_metas"]["img_id"] == 10 and len(sample["gt_bboxes_ignore"]) == 1


def test_classes_restrict_and_reorder(coco):
    ann, prefix = coco
    ds = build_dataset(coco_cfg(ann, prefix, classes=["bird", "cat"]))
    assert ds.CLASSES == ("bird", "cat") and ds.cat_ids == [7, 1]
    assert ds.img_ids == [10, 11]
    assert ds.get_ann_info(0)["labels"].tolist() == [1]  # the dog box is gone
    assert ds.get_ann_info(1)["labels"].tolist() == [0]
    only_dog = build_dataset(coco_cfg(ann, prefix, classes=["dog"]))
    assert only_dog.img_ids == [10]
    with pytest.raises(
        DataError, match=r"'dgo' in `classes` is not a category of .*ann.json. Did you mean 'dog'"
    ):
        build_dataset(coco_cfg(ann, prefix, classes=["dgo"]))


def test_classes_from_a_text_file(coco, tmp_path):
    ann, prefix = coco
    (tmp_path / "names.txt").write_text("dog\ncat\n")
    ds = build_dataset(coco_cfg(ann, prefix, classes=str(tmp_path / "names.txt")))
    assert ds.CLASSES == ("dog", "cat")


def test_filter_switches_and_test_mode(coco):
    ann, prefix = coco
    keep_empty = build_dataset(coco_cfg(ann, prefix, filter_empty_gt=False))
    assert keep_empty.img_ids == [10, 11, 12, 14]  # only the small image is dropped
    small_ok = build_dataset(coco_cfg(ann, prefix, filter_empty_gt=False, min_size=0))
    assert small_ok.img_ids == [10, 11, 12, 13, 14]
    test = build_dataset(coco_cfg(ann, prefix, TEST_PIPELINE), test_mode=True)
    assert test.img_ids == [10, 11, 12, 13, 14] and test.test_mode
    views = test[3]
    assert len(views["img"]) == 1 and views["img_metas"][0]["ori_shape"] == (20, 20, 3)


def test_test_set_json_without_annotations(tmp_path):
    ann, prefix = write_coco(tmp_path, [image(1), image(2)], [], CATEGORIES)
    text = ann.read_text().replace('"annotations": [], ', "")
    ann.write_text(text)
    ds = build_dataset(coco_cfg(ann, prefix, TEST_PIPELINE, test_mode=True))
    assert len(ds) == 2 and ds.get_ann_info(0)["bboxes"].shape == (0, 4)
    with pytest.raises(DataError, match="has no 'annotations'"):
        build_dataset(coco_cfg(ann, prefix))


def test_flags_group_by_aspect_ratio(tmp_path):
    images = [image(1, 64, 48), image(2, 48, 64), image(3, 64, 64)]
    anns = [box(i, i, 1, [1, 1, 10, 10]) for i in (1, 2, 3)]
    ann, prefix = write_coco(tmp_path, images, anns, CATEGORIES)
    assert build_dataset(coco_cfg(ann, prefix)).flag.tolist() == [1, 0, 0]


def test_missing_image_error_or_warn_and_skip(tmp_path):
    images = [image(1), image(2), image(3)]
    anns = [box(i, i, 1, [1, 1, 10, 10]) for i in (1, 2, 3)]
    ann, prefix = write_coco(tmp_path, images, anns, CATEGORIES)
    (prefix / "0002.png").unlink()
    strict = build_dataset(coco_cfg(ann, prefix))
    with pytest.raises(DataError, match=r"0002.png \(image id 2\) cannot be read"):
        strict[1]
    with pytest.warns(DataWarning, match="1 image.* image ids 2"):
        lenient = build_dataset(coco_cfg(ann, prefix, on_bad_image="warn"))
    assert lenient.img_ids == [1, 3]
    (prefix / "0003.png").write_bytes(b"broken")  # corrupt after the dataset was built
    with pytest.warns(DataWarning, match=r"0003.png \(image id 3\) cannot be decoded"):
        assert lenient[1]["img_metas"]["img_id"] == 1  # replaced by another image


def test_pickling_keeps_arrays_and_drops_the_coco_object(coco):
    ann, prefix = coco
    ds = build_dataset(coco_cfg(ann, prefix))
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._coco is None
    assert clone.get_ann_info(0)["labels"].tolist() == [1, 0]
    assert clone.coco.getImgIds() == [10, 11, 12, 13, 14]  # rebuilt when asked for


def test_train_sample_matches_the_sample_contract(shapes_coco):
    ds = build_dataset(
        coco_cfg(shapes_coco.train_ann, shapes_coco.train_img, classes=list(shapes_coco.classes))
    )
    assert len(ds) == 16 and shapes_coco.classes == ds.CLASSES
    sample = ds[0]
    img, meta = sample["img"], sample["img_metas"]
    assert img.dtype == torch.float32 and img.shape[0] == 3
    assert img.shape[1] % 32 == 0 and img.shape[2] % 32 == 0
    assert meta["ori_shape"] == (128, 128, 3) and meta["img_shape"] == (96, 96, 3)
    raw = torch.from_numpy(ds.get_ann_info(0)["bboxes"])
    expected = raw * 0.75
    if meta["flip"]:
        expected = torch.stack(
            [96 - expected[:, 2], expected[:, 1], 96 - expected[:, 0], expected[:, 3]], 1
        )
    torch.testing.assert_close(sample["gt_bboxes"], expected)
    assert TRAIN_PIPELINE[2]["img_scale"] == [128, 96]


def test_duplicate_ids_are_refused(tmp_path):
    ann, prefix = write_coco(
        tmp_path, [image(1), image(1)], [box(1, 1, 1, [1, 1, 9, 9])], CATEGORIES
    )
    with pytest.raises(DataError, match=r"ann.json: image id 1 is used 2 times"):
        build_dataset(coco_cfg(ann, prefix))
    anns = [box(4, 1, 1, [1, 1, 9, 9]), box(4, 1, 1, [2, 2, 9, 9])]
    ann, prefix = write_coco(tmp_path, [image(1)], anns, CATEGORIES, name="b.json")
    with pytest.raises(DataError, match=r"b.json: annotation id 4 is used 2 times"):
        build_dataset(coco_cfg(ann, prefix))

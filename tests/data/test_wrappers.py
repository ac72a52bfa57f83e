"""Dataset wrappers: Concat, Repeat, ClassBalanced (LVIS repeat factors), built from config."""

from __future__ import annotations

import math

import numpy as np
import pytest
from data_helpers import CATEGORIES, box, coco_cfg, image, write_coco

from detcli.data import build_dataset
from detcli.data.wrappers import leaf_datasets, repeat_factors
from detcli.errors import DataError


@pytest.fixture
def imbalanced(tmp_path):
    """8 images: 'cat' on all 8, 'dog' on 2, 'bird' on 1 (together with a cat)."""
    images = [image(i, 64, 48) for i in range(1, 9)]
    anns = [box(i, i, 1, [1, 1, 10, 10]) for i in range(1, 9)]
    anns += [box(20, 1, 3, [20, 20, 10, 10]), box(21, 2, 3, [20, 20, 10, 10])]
    anns += [box(30, 3, 7, [30, 5, 10, 10])]
    return write_coco(tmp_path, images, anns, CATEGORIES)


def test_repeat_factors_follow_lvis():
    matrix = np.array([[1, 0, 0], [1, 1, 0], [1, 1, 0], [1, 0, 1]], dtype=bool)
    # freq: cat 1, dog 0.5, bird 0.25; thr 0.5 -> r = max(1, sqrt(0.5 / f)) = 1, 1, sqrt(2)
    factors = repeat_factors(matrix, oversample_thr=0.5)
    assert factors.tolist() == pytest.approx([1.0, 1.0, 1.0, math.sqrt(2)])
    with_empty = np.vstack([matrix, np.zeros((1, 3), bool)])
    # an image without boxes counts as its own (rare) class unless empty images are filtered
    assert repeat_factors(with_empty, 0.5)[-1] == 1.0
    assert repeat_factors(with_empty, 0.5, filter_empty_gt=False)[-1] == pytest.approx(
        math.sqrt(2.5)
    )


def test_class_balanced_dataset_repeats_images_with_rare_classes(imbalanced):
    ann, prefix = imbalanced
    ds = build_dataset(
        {"type": "ClassBalancedDataset", "oversample_thr": 0.5, "dataset": coco_cfg(ann, prefix)}
    )
    # freq: cat 1, dog 2/8, bird 1/8 -> r(dog) = sqrt(2) -> 2 copies, r(bird) = 2 -> 2 copies
    assert ds.repeat_factors.tolist() == pytest.approx(
        [math.sqrt(2), math.sqrt(2), 2.0] + [1.0] * 5
    )
    assert ds.repeat_indices.tolist() == [0, 0, 1, 1, 2, 2, 3, 4, 5, 6, 7]
    assert len(ds) == 11 and ds.CLASSES == ("cat", "dog", "bird")
    assert ds[1]["img_metas"]["img_id"] == 1
    bird_images = ds.get_cat2imgs()[2]
    assert bird_images == [4, 5]


def test_repeat_and_concat(imbalanced, tmp_path):
    ann, prefix = imbalanced
    rep = build_dataset({"type": "RepeatDataset", "times": 3, "dataset": coco_cfg(ann, prefix)})
    assert len(rep) == 24 and rep.CLASSES == ("cat", "dog", "bird")
    assert rep[9]["img_metas"]["img_id"] == 2 and rep.flag.shape == (24,)
    other, other_prefix = write_coco(
        tmp_path / "b", [image(50, 48, 64)], [box(1, 50, 3, [1, 1, 9, 9])], CATEGORIES
    )
    cat = build_dataset(
        {
            "type": "ConcatDataset",
            "datasets": [coco_cfg(ann, prefix), coco_cfg(other, other_prefix)],
        }
    )
    assert len(cat) == 9 and cat.CLASSES == ("cat", "dog", "bird")
    assert cat[8]["img_metas"]["img_id"] == 50 and cat.flag.tolist()[-1] == 0
    assert [len(d) for d in leaf_datasets(cat)] == [8, 1]
    assert cat.get_cat2imgs()[1] == [0, 1, 8]
    with pytest.raises(DataError, match="different classes"):
        build_dataset(
            {
                "type": "ConcatDataset",
                "datasets": [coco_cfg(ann, prefix), coco_cfg(other, other_prefix, classes=["dog"])],
            }
        )


def test_test_mode_reaches_wrapped_datasets(imbalanced):
    ann, prefix = imbalanced
    rep = build_dataset(
        {"type": "RepeatDataset", "times": 2, "dataset": coco_cfg(ann, prefix)}, test_mode=True
    )
    assert rep.dataset.test_mode is True


def test_wrappers_take_built_datasets_from_python_without_any_config(imbalanced):
    """Parts receive built parts: the Python API needs no registry and no config dicts."""
    from detcli.data import ClassBalancedDataset, CocoDataset, ConcatDataset, RepeatDataset
    from detcli.data.transforms import LoadAnnotations, LoadImageFromFile, PackDetInputs

    ann, prefix = imbalanced
    steps = [LoadImageFromFile(), LoadAnnotations(with_bbox=True), PackDetInputs()]
    coco = CocoDataset(str(ann), steps, img_prefix=str(prefix))
    rep = RepeatDataset(coco, times=2)
    both = ConcatDataset([coco, rep])
    assert len(both) == 24 and both[-1]["img_metas"]["img_id"] == 8
    assert both[8]["img_metas"]["img_id"] == both[0]["img_metas"]["img_id"] == 1
    balanced = ClassBalancedDataset(both, oversample_thr=0.5)
    # one get_cat2imgs for all: each wrapper's index follows its own sample order
    assert coco.get_cat2imgs()[2] == [2]
    assert rep.get_cat2imgs()[2] == [2, 10] and both.get_cat2imgs()[2] == [2, 10, 18]
    assert balanced.get_cat2imgs()[2] == [i for i, j in enumerate(balanced.repeat_indices)
                                          if j in (2, 10, 18)]  # fmt: skip
    from_config = build_dataset(
        {"type": "RepeatDataset", "times": 2, "dataset": coco_cfg(ann, prefix)}
    )
    assert from_config.get_cat2imgs() == rep.get_cat2imgs()


def test_a_wrapper_given_an_unbuilt_config_names_the_argument(imbalanced):
    from detcli.data import RepeatDataset

    ann, prefix = imbalanced
    untyped = {k: v for k, v in coco_cfg(ann, prefix).items() if k != "type"}
    with pytest.raises(DataError, match=r"RepeatDataset\.dataset is a dataset config .* `type`"):
        build_dataset({"type": "RepeatDataset", "times": 2, "dataset": untyped})
    with pytest.raises(DataError, match=r"RepeatDataset\.dataset must be a dataset"):
        RepeatDataset("train.json", times=2)  # type: ignore[arg-type]

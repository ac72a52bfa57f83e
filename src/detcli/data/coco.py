"""CocoDataset: a COCO detection file read through pycocotools, held as flat numpy arrays.

Per-image annotations live in a few arrays (boxes, labels, crowd flags) indexed by offsets,
not in lists of dicts: dataloader workers then share them without copying page by page.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import numpy as np
from torch.utils.data import Dataset

from detcli.config.paths import join_root
from detcli.data.classes import read_palette, select_classes
from detcli.data.coco_args import (
    FILTER_AUTO,
    check_backend_args,
    filtering_of,
    resolve_data_prefix,
    subset,
)
from detcli.data.coco_json import (
    ABSURD_BOX_FACTOR,
    annotation_arrays,
    drop_malformed,
    index_of,
    read_coco_json,
)
from detcli.data.protocol import BoolMatrix, ClassIndex
from detcli.data.segments import SegmentTable
from detcli.data.transforms import BadImageError, Compose
from detcli.data.transforms.compose import TransformFn
from detcli.errors import DataError
from detcli.registry import DATASETS, Transform

MAX_RETRIES = 50


class DataWarning(UserWarning):
    """Something in the data was skipped (a missing or unreadable image) and training goes on."""


@DATASETS.register()
class CocoDataset(ClassIndex, Dataset):  # type: ignore[type-arg]
    """Images and boxes of a COCO json; `classes` restricts and orders the categories.

    Takes MMDetection 2.x arguments (img_prefix, classes, filter_empty_gt, min_size) and 3.x /
    mmengine ones (data_prefix, metainfo, filter_cfg, indices, backend_args, lazy_init,
    serialize_data); giving one setting in both spellings is a DataError.
    """

    NO_EFFECT_ARGS: ClassVar[dict[str, str]] = {
        "serialize_data": "annotations are flat arrays already, shared by workers",
        "lazy_init": "the arrays are built at once, cheaply",
    }

    def __init__(
        self,
        ann_file: str,
        pipeline: list[Transform[TransformFn]],
        img_prefix: str | None = None,
        classes: Sequence[str] | str | None = None,
        data_root: str | None = None,
        filter_empty_gt: bool | None = None,
        min_size: int | None = None,
        test_mode: bool = False,
        on_bad_image: Literal["error", "warn"] = "error",
        data_prefix: Mapping[str, str] | None = None,
        metainfo: Mapping[str, Any] | None = None,
        filter_cfg: Mapping[str, Any] | Literal["auto"] | None = FILTER_AUTO,
        indices: int | Sequence[int] | None = None,
        backend_args: Mapping[str, Any] | None = None,
        serialize_data: bool = True,  # mmengine packs data_list into one buffer; arrays already are
        lazy_init: bool = False,  # mmengine defers loading; the arrays are cheap to build now
    ):
        check_backend_args(backend_args)
        self.data_root = data_root
        self.ann_file = join_root(data_root, ann_file)
        self.data_prefix = resolve_data_prefix(data_root, img_prefix, data_prefix)
        self.img_prefix = self.data_prefix["img"]
        self.test_mode = test_mode
        spelled_3x = data_prefix is not None or metainfo is not None or indices is not None
        filtering = filtering_of(filter_cfg, filter_empty_gt, min_size, spelled_3x)
        self.filtering = filtering
        self.filter_empty_gt = filtering.filter_empty_gt
        self.min_size = filtering.min_size
        self.on_bad_image = on_bad_image
        meta = dict(metainfo or {})
        if classes is not None and "classes" in meta:
            raise DataError(
                "The dataset gives its classes twice: `classes` (MMDetection 2.x) and "
                "`metainfo.classes` (3.x). Keep one of them."
            )
        data = read_coco_json(self.ann_file, allow_no_annotations=test_mode)
        self._warn_malformed(drop_malformed(data))  # train and eval (the COCO object) alike
        wanted = meta.pop("classes", classes)
        self.CLASSES, self.cat_ids = select_classes(self.ann_file, data["categories"], wanted)
        self.PALETTE = read_palette(meta.pop("palette", None), self.CLASSES)
        self.metainfo: dict[str, Any] = {"classes": self.CLASSES, "palette": self.PALETTE, **meta}
        self._load_arrays(data)
        # segmentations only when the pipeline loads masks: a box detector holds none of them
        self._segments: SegmentTable | None = None
        if wants_masks(pipeline):
            self._segments = SegmentTable.from_annotations(
                self.ann_file, data["annotations"], self._ann_rows, self._crowd
            )
        self._seg_rows = np.arange(len(self._bboxes))  # row of each kept box in _segments
        if indices is not None:
            self._take(subset(indices, len(self)))
        self._coco: Any = _make_coco(data)
        self.pipeline = Compose(pipeline)

    # -- reading the file into arrays ---------------------------------------------------------

    def _load_arrays(self, data: dict[str, Any]) -> None:
        images = data["images"]
        img_ids = np.fromiter((i["id"] for i in images), np.int64, len(images))
        widths = np.fromiter((i["width"] for i in images), np.int64, len(images))
        heights = np.fromiter((i["height"] for i in images), np.int64, len(images))
        names = np.array([str(i["file_name"]) for i in images] or [""], dtype=str)[: len(images)]

        anns = annotation_arrays(data["annotations"])
        self._refuse_duplicates("image", img_ids)
        self._refuse_duplicates("annotation", anns.ids)
        order = np.argsort(img_ids, kind="stable")
        img_of_ann = index_of(img_ids[order], order, anns.image_ids)
        cat_ids = np.asarray(self.cat_ids, dtype=np.int64)
        cat_order = np.argsort(cat_ids, kind="stable")
        labels = index_of(cat_ids[cat_order], cat_order, anns.category_ids)

        # mmdet's rules for a usable box: some of it inside the image, at least 1 px each way.
        x, y, w, h = anns.boxes_xywh.T
        safe = img_of_ann.clip(0)
        img_w = widths[safe] if widths.size else np.zeros_like(x)
        img_h = heights[safe] if heights.size else np.zeros_like(y)
        inter_w = np.minimum(x + w, img_w) - np.maximum(x, 0)
        inter_h = np.minimum(y + h, img_h) - np.maximum(y, 0)
        area = np.where(np.isnan(anns.areas), w * h, anns.areas)
        usable = (
            (img_of_ann >= 0) & (labels >= 0) & ~anns.ignore
            & (inter_w > 0) & (inter_h > 0) & (area > 0) & (w >= 1) & (h >= 1)
        )  # fmt: skip
        targets = np.bincount(img_of_ann[usable & ~anns.crowd], minlength=len(images))

        keep = np.ones(len(images), dtype=bool)
        if not self.test_mode:
            keep &= np.minimum(widths, heights) >= self.min_size
            if self.filter_empty_gt:
                keep &= targets > 0
        if self.on_bad_image == "warn":
            keep &= self._files_present(names, img_ids, keep)

        new_index = np.cumsum(keep) - 1
        sel = usable.copy()
        sel[usable] = keep[img_of_ann[usable]]
        ann_img = new_index[img_of_ann[sel]]
        by_img = np.argsort(ann_img, kind="stable")  # json order within an image
        xyxy = np.stack((x, y, x + w, y + h), axis=1)[sel][by_img]
        self._bboxes = xyxy.astype(np.float32)
        self._labels = labels[sel][by_img].astype(np.int64)
        self._crowd = anns.crowd[sel][by_img]
        self._ann_rows = np.flatnonzero(sel)[by_img]  # position of each kept box in the json
        self._offsets = np.concatenate(
            ([0], np.cumsum(np.bincount(ann_img, minlength=int(keep.sum()))))
        )
        self._img_ids = img_ids[keep]
        self.img_ids: list[int] = self._img_ids.tolist()
        self._file_names = names[keep]
        self._widths = widths[keep]
        self._heights = heights[keep]
        # Aspect-ratio group of each image (1: wider than tall), for grouped batches.
        self.flag = (self._widths > self._heights).astype(np.uint8)

    def _take(self, order: np.ndarray) -> None:
        """Keep images `order` (positions, in that order) with their boxes: `indices`."""
        starts, counts = self._offsets[order], np.diff(self._offsets)[order]
        # positions of each kept image's boxes, image after image (no loop over boxes)
        rows = np.repeat(starts - np.concatenate(([0], np.cumsum(counts)[:-1])), counts)
        rows += np.arange(int(counts.sum()))
        self._bboxes, self._labels, self._crowd = (
            self._bboxes[rows],
            self._labels[rows],
            self._crowd[rows],
        )
        self._seg_rows = self._seg_rows[rows]
        self._offsets = np.concatenate(([0], np.cumsum(counts)))
        self._img_ids = self._img_ids[order]
        self.img_ids = self._img_ids.tolist()
        self._file_names = self._file_names[order]
        self._widths, self._heights = self._widths[order], self._heights[order]
        self.flag = self.flag[order]

    def _warn_malformed(self, count: int) -> None:
        if count:
            warnings.warn(
                f"{self.ann_file}: {count} box(es) with inf/NaN values or absurd sizes (more than "
                f"{ABSURD_BOX_FACTOR:g}x their image) are left out of training and evaluation. "
                f"`detcli dataset lint` lists them with their ids.",
                DataWarning,
                stacklevel=3,
            )

    def _refuse_duplicates(self, what: str, ids: np.ndarray) -> None:
        """Two entries with one id make results and evaluation ambiguous: stop early."""
        values, counts = np.unique(ids, return_counts=True)
        if (counts > 1).any():
            twice, times = values[counts > 1], counts[counts > 1]
            raise DataError(
                f"Annotation file {self.ann_file}: {what} id {twice[0]} is used {times[0]} "
                f"times ({twice.size} {what} id(s) repeat). Give each {what} its own id; "
                f"`detcli dataset lint` lists them all."
            )

    def _files_present(
        self, names: np.ndarray, img_ids: np.ndarray, keep: np.ndarray
    ) -> np.ndarray:
        """Which images have a file on disk; the missing ones are reported once and left out."""
        present = np.array(
            [
                not k or os.path.isfile(join_root(self.img_prefix, str(n)))
                for n, k in zip(names, keep, strict=True)
            ],
            dtype=bool,
        )
        if not present.all():
            gone = img_ids[~present]
            shown = ", ".join(str(i) for i in gone[:10]) + (" ..." if gone.size > 10 else "")
            warnings.warn(
                f"{self.ann_file}: {gone.size} image(s) have no file under {self.img_prefix!r} "
                f"and are left out (on_bad_image: warn); image ids {shown}. "
                f"`detcli dataset lint` lists them all.",
                DataWarning,
                stacklevel=4,
            )
        return present

    # -- the dataset API ---------------------------------------------------------------------

    @property
    def coco(self) -> Any:
        """The pycocotools COCO object of the annotation file (evaluation reads it)."""
        if self._coco is None:  # dropped when the dataset was pickled into a worker
            data = read_coco_json(self.ann_file, allow_no_annotations=self.test_mode)
            drop_malformed(data)
            self._coco = _make_coco(data)
        return self._coco

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_coco"] = None  # workers need the arrays, not the json's Python objects
        return state

    def __len__(self) -> int:
        return len(self.img_ids)

    def get_img_info(self, idx: int) -> dict[str, Any]:
        """id, file name and size (as the json gives it) of image `idx`."""
        name = str(self._file_names[idx])
        return {
            "id": int(self._img_ids[idx]),
            "filename": name,
            "file_name": name,
            "width": int(self._widths[idx]),
            "height": int(self._heights[idx]),
        }

    def get_ann_info(self, idx: int) -> dict[str, Any]:
        """Boxes (xyxy float32), labels (int64) and crowd boxes to ignore, for image `idx`;
        with a pipeline that loads masks, `masks`: the COCO segmentation of each box."""
        lo, hi = int(self._offsets[idx]), int(self._offsets[idx + 1])
        crowd = self._crowd[lo:hi]
        boxes = self._bboxes[lo:hi]
        info: dict[str, Any] = {
            "bboxes": boxes[~crowd],
            "labels": self._labels[lo:hi][~crowd],
            "bboxes_ignore": boxes[crowd],
        }
        if self._segments is not None:
            info["masks"] = self._segments[self._seg_rows[lo:hi][~crowd]]
        return info

    def box_table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every kept box at once: (image index, xyxy float32, label, crowd flag)."""
        img_of_box = np.repeat(np.arange(len(self)), np.diff(self._offsets))
        return img_of_box, self._bboxes, self._labels, self._crowd

    def mask_flags(self) -> np.ndarray | None:
        """bool per row of `box_table`: has a usable segmentation; None when the pipeline
        loads no masks (the segmentations were not read)."""
        if self._segments is None:
            return None
        flags: np.ndarray = self._segments.usable[self._seg_rows]
        return flags

    def image_sizes(self) -> np.ndarray:
        """(num_images, 2) width and height of each image, as the json gives them."""
        return np.stack([self._widths, self._heights], axis=1)

    def image_class_matrix(self) -> BoolMatrix:
        """(num_images, num_classes) bool: does image i hold a (non-crowd) box of class c."""
        matrix = np.zeros((len(self), len(self.CLASSES)), dtype=bool)
        img_of_box, _, labels, crowd = self.box_table()
        matrix[img_of_box[~crowd], labels[~crowd]] = True
        return matrix

    def results(self, idx: int) -> dict[str, Any]:
        """The results dict a pipeline starts from (image info, annotations, prefix)."""
        info = self.get_img_info(idx)
        return {
            "img_info": info,
            "img_id": info["id"],
            "ann_info": self.get_ann_info(idx),
            "img_prefix": self.img_prefix,
            "bbox_fields": [],
        }

    def __getitem__(self, idx: int) -> Any:
        for _ in range(MAX_RETRIES):
            try:
                sample = self.pipeline(self.results(idx))
            except BadImageError as exc:
                if self.on_bad_image == "error":
                    raise
                warnings.warn(f"{exc} Skipped (on_bad_image: warn).", DataWarning, stacklevel=2)
                if self.test_mode:  # evaluation: the image is named and gets no detections
                    return {"failed": str(exc)}
                idx = self._another(idx)
                continue
            if sample is not None:
                return sample
            if self.test_mode:
                raise DataError(
                    f"{self.ann_file}: the test pipeline rejected image id {self.img_ids[idx]}."
                )
            idx = self._another(idx)
        raise DataError(
            f"{self.ann_file}: {MAX_RETRIES} images in a row could not be loaded or were rejected "
            f"by the pipeline. Run `detcli dataset lint` on the config."
        )

    def _another(self, idx: int) -> int:
        """A random image of the same aspect group (grouped batches stay consistent)."""
        pool = np.flatnonzero(self.flag == self.flag[idx])
        return int(pool[random.randrange(pool.size)])

    def __repr__(self) -> str:
        mode = "test" if self.test_mode else "train"
        return (
            f"CocoDataset({self.ann_file}, {len(self)} images, {len(self.CLASSES)} classes, {mode})"
        )


def wants_masks(pipeline: Sequence[Any]) -> bool:
    """Whether a step (or a step inside a test-time wrapper) loads instance masks."""
    for step in pipeline:
        if getattr(step, "with_mask", False) is True:
            return True
        inner = getattr(step, "transforms", None)
        inner = getattr(inner, "transforms", inner)  # MultiScaleFlipAug holds a Compose
        if isinstance(inner, (list, tuple)) and wants_masks(inner):
            return True
    return False


def _make_coco(data: dict[str, Any]) -> Any:
    """A pycocotools COCO over already-parsed json (no second read, no prints)."""
    from pycocotools.coco import COCO

    for ann in data["annotations"]:
        if "area" not in ann:  # COCOeval sorts by area; files from some tools omit it
            ann["area"] = float(ann["bbox"][2] * ann["bbox"][3])
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco

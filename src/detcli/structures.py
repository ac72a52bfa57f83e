"""What flows between the data pipeline, the detector and the engine.

One sample leaves the pipeline (after `Collect` / `PackDetInputs`) as a `Sample`; the loader's
collate pads a list of them into one `Batch`. The detector trains on a `Batch`
(`model(**batch)` returns a dict of named losses) and predicts `Detections` per image, in
ORIGINAL image pixels. Test-time augmentation (`MultiScaleFlipAug`) yields several views of an
image; then `img` and `img_metas` hold one entry per view (see `AugSample` / `AugBatch`).
A sample that could not be loaded at test time is `{"failed": message}`; collate gathers those
into the batch's `failed` (position in the batch -> message) and the inference loop gives those
images empty `Detections`.

Box convention everywhere: float32 `(N, 4)` tensors, `x1, y1, x2, y2` in pixels of the image
they belong to (the transformed image in a batch, the original image in `Detections`).
Instance masks (with `LoadAnnotations(with_mask=True)`): `gt_masks` holds one mask per row of
`gt_bboxes`, as an `InstanceMasks` object (bitmaps, or polygons kept as polygons so a large set
holds no full-image bitmaps); predicted masks are bool (K, H, W) in original image pixels, or
COCO RLE once encoded for results files.
Labels are int64 contiguous class indices `0..num_classes-1` in the order of `classes`.
This module imports nothing heavy at run time, so the CLI can name these types cheaply.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, TypedDict

if TYPE_CHECKING:
    import numpy as np
    import torch


class ImgMeta(TypedDict, total=False):
    """Per-image metadata the pipeline records so predictions map back to the original image."""

    img_id: int  # the COCO image id (results files need it)
    filename: str  # full path of the image file
    ori_filename: str  # `file_name` as written in the COCO json
    ori_shape: tuple[int, int, int]  # (h, w, c) as decoded from the file
    img_shape: tuple[int, int, int]  # (h, w, c) after Resize, before Pad
    pad_shape: tuple[int, int, int]  # (h, w, c) after Pad
    batch_input_shape: tuple[int, int]  # (h, w) of the padded batch tensor (set by collate)
    scale_factor: np.ndarray  # float32 [w_scale, h_scale, w_scale, h_scale]: img_shape / ori_shape
    flip: bool  # whether RandomFlip flipped this image
    flip_direction: str | None  # "horizontal" | "vertical" | "diagonal" | None
    img_norm_cfg: dict[str, Any]  # mean, std, to_rgb used by Normalize


class Sample(TypedDict, total=False):
    """One training or single-view test sample as the pipeline returns it."""

    img: torch.Tensor  # float32 (3, H, W), normalized, padded
    img_metas: ImgMeta
    gt_bboxes: torch.Tensor  # float32 (N, 4), xyxy in `img` pixels
    gt_labels: torch.Tensor  # int64 (N,)
    gt_bboxes_ignore: torch.Tensor  # float32 (M, 4): crowd regions, never targets
    gt_masks: InstanceMasks  # one per row of gt_bboxes, in `img` pixels (with_mask=True)


class AugSample(TypedDict):
    """A test sample with several augmented views (MultiScaleFlipAug): one entry per view."""

    img: list[torch.Tensor]
    img_metas: list[ImgMeta]


class Batch(TypedDict, total=False):
    """A collated batch: images padded (bottom/right, zeros) to one tensor, the rest per image."""

    img: torch.Tensor  # float32 (B, 3, H, W)
    img_metas: list[ImgMeta]
    gt_bboxes: list[torch.Tensor]
    gt_labels: list[torch.Tensor]
    gt_bboxes_ignore: list[torch.Tensor]
    gt_masks: list[InstanceMasks]  # per image, when the pipeline loads masks
    failed: dict[int, str]  # test time: position in the batch -> why that sample failed


class _MayFail(TypedDict, total=False):
    failed: dict[int, str]  # as in `Batch` (a base class: `NotRequired` is Python 3.11+)


class AugBatch(_MayFail):
    """A collated test batch of augmented views: `img[v]` is view v of every image."""

    img: list[torch.Tensor]  # per view: (B, 3, H_v, W_v)
    img_metas: list[list[ImgMeta]]  # per view, per image


TestBatch: TypeAlias = "Batch | AugBatch"
"""What a test loader yields: one view per image, or several (test-time augmentation)."""

LossDict: TypeAlias = "dict[str, torch.Tensor | list[torch.Tensor]]"
"""A detector's training forward, `model(**batch)`: named losses, each a scalar or one per
feature level (summed). Keys starting with `loss` are trained on; the others are only logged."""


class InstanceMasks(Protocol):
    """The masks of an image's instances, in the pixels of the image they belong to.

    Implemented by bitmaps and by polygons (`detcli.data.masks`); the mask head reads only
    `crop_and_resize`, so either trains it.
    """

    @property
    def height(self) -> int: ...

    @property
    def width(self) -> int: ...

    def __len__(self) -> int: ...

    def crop_and_resize(
        self,
        boxes: torch.Tensor,
        inds: torch.Tensor,
        size: tuple[int, int],
        binarize: bool = True,
    ) -> torch.Tensor:
        """Float (P, h, w) in [0, 1]: mask `inds[p]` cut to box `boxes[p]` (xyxy, these pixels)
        and resized to `size` (the mask head's targets), on `boxes`' device; thresholded at
        0.5 with `binarize` (MMDetection's targets), else soft."""
        ...


@dataclass
class Detections:
    """Predictions for one image, in original image pixels."""

    boxes: torch.Tensor  # float32 (K, 4) xyxy
    scores: torch.Tensor  # float32 (K,)
    labels: torch.Tensor  # int64 (K,)
    masks: torch.Tensor | None = None  # bool (K, H, W) at the original size (a mask head's)
    rles: list[dict[str, Any]] | None = None  # the masks as COCO RLE (`encode_masks()`)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def to(self, device: torch.device | str) -> Detections:
        """The same detections on another device."""
        masks = None if self.masks is None else self.masks.to(device)
        return Detections(
            self.boxes.to(device), self.scores.to(device), self.labels.to(device), masks, self.rles
        )


class DetectionDataset(Protocol):
    """What the engine reads of any dataset it trains or evaluates on: size and class names.

    (Minimal on purpose: the data package's own dataset protocol is the full contract.)
    """

    @property
    def CLASSES(self) -> Sequence[str]: ...

    def __len__(self) -> int: ...


class CocoGroundTruth(DetectionDataset, Protocol):
    """A dataset COCO evaluation can score against (`CocoDataset`): its annotations as a COCO
    object, its image ids in dataset order and the COCO category id of each label."""

    @property
    def coco(self) -> Any: ...  # pycocotools.coco.COCO, which ships no type information

    @property
    def img_ids(self) -> Sequence[int]: ...

    @property
    def cat_ids(self) -> Sequence[int]: ...

    def get_img_info(self, idx: int) -> dict[str, Any]:
        """The COCO `images` entry of image `idx` (`id`, `file_name`, `width`, `height`)."""
        ...

    def box_table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every annotation at once: (image index, xyxy boxes, labels, crowd flags)."""
        ...

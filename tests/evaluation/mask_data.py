"""A tiny real COCO instance-segmentation set for the segm tests, and a model that predicts masks.

Three 64x48 PNGs (not square: a transposed mask would show), two categories with ids 3 and 7
(not 1..K: category mapping is exercised), polygon segmentations, one compressed-RLE instance
and one crowd region as uncompressed RLE (an ignore region). `bbox` and `area` are the masks'
own, computed by pycocotools as COCO's tools write them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from detcli.structures import Detections

WIDTH, HEIGHT = 64, 48
CATEGORIES = [{"id": 3, "name": "square"}, {"id": 7, "name": "blob"}]
CLASSES = ("square", "blob")


@dataclass(frozen=True)
class MaskSet:
    """The written set: its COCO json and image folder."""

    ann_file: Path
    img_dir: Path


def _ellipse(cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
    y, x = np.mgrid[:HEIGHT, :WIDTH]
    return ((x + 0.5 - cx) / rx) ** 2 + ((y + 0.5 - cy) / ry) ** 2 <= 1.0


def _instances() -> list[tuple[int, int, Any, int]]:
    """(image id, category id, segmentation, iscrowd) of every annotation."""
    from pycocotools import mask as mask_utils

    blob = mask_utils.encode(np.asfortranarray(_ellipse(40, 24, 14, 10).astype(np.uint8)))
    blob["counts"] = blob["counts"].decode("ascii")  # compressed RLE, as a json file holds it
    crowd = _ellipse(48, 36, 12, 8)
    # uncompressed RLE: run lengths over the column-major (Fortran) pixel order
    flat = crowd.flatten(order="F").astype(np.int8)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
    runs = np.diff(np.concatenate([[0], edges])).tolist()
    crowd_rle = {"size": [HEIGHT, WIDTH], "counts": runs}
    return [
        (1, 3, [[8, 8, 30, 8, 30, 30, 8, 30]], 0),
        (1, 7, [[36, 10, 60, 10, 48, 40]], 0),
        (2, 3, [[4, 4, 24, 4, 24, 12, 12, 12, 12, 30, 4, 30]], 0),  # an L
        (2, 7, blob, 0),
        (3, 3, [[6, 10, 26, 10, 26, 40, 6, 40]], 0),
        (3, 7, crowd_rle, 1),
    ]


def write_mask_coco(root: Path) -> MaskSet:
    """Write `root/masks.json` and three PNGs under `root/images`."""
    from PIL import Image
    from pycocotools import mask as mask_utils

    img_dir = root / "images"
    img_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    images = []
    for img_id in (1, 2, 3):
        name = f"{img_id:03d}.png"
        pixels = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(img_dir / name)
        images.append({"id": img_id, "file_name": name, "width": WIDTH, "height": HEIGHT})
    annotations = []
    for ann_id, (img_id, cat, segm, crowd) in enumerate(_instances(), 1):
        if isinstance(segm, list):
            rle = mask_utils.merge(mask_utils.frPyObjects(segm, HEIGHT, WIDTH))
        elif isinstance(segm["counts"], list):
            rle = mask_utils.frPyObjects(segm, HEIGHT, WIDTH)
        else:
            rle = {"size": segm["size"], "counts": segm["counts"].encode("ascii")}
        annotations.append(
            {
                "id": ann_id,
                "image_id": img_id,
                "category_id": cat,
                "segmentation": segm,
                "bbox": mask_utils.toBbox(rle).tolist(),
                "area": float(mask_utils.area(rle)),
                "iscrowd": crowd,
            }
        )
    coco = {"images": images, "annotations": annotations, "categories": CATEGORIES}
    ann_file = root / "masks.json"
    ann_file.write_text(json.dumps(coco), encoding="utf-8")
    return MaskSet(ann_file, img_dir)


def gt_masks(coco: Any, img_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(bool masks (K, H, W), xyxy boxes, labels) of an image's non-crowd annotations."""
    anns = [a for a in coco.imgToAnns[img_id] if not a["iscrowd"]]
    cat_ids = [c["id"] for c in CATEGORIES]
    masks = torch.from_numpy(np.stack([coco.annToMask(a) for a in anns])).bool()
    xywh = torch.tensor([a["bbox"] for a in anns], dtype=torch.float32)
    boxes = torch.cat([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], dim=1)
    labels = torch.tensor([cat_ids.index(a["category_id"]) for a in anns])
    return masks, boxes, labels


def shifted_detections(coco: Any, img_ids: list[int], seed: int = 0) -> list[Detections]:
    """The ground-truth masks moved a few pixels, one dropped, a false positive added, scores
    random: a prediction that scores well below 1 and differently at each IoU threshold."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for img_id in img_ids:
        masks, boxes, labels = gt_masks(coco, img_id)
        shifts = torch.randint(-2, 3, (len(masks), 2), generator=g)
        moved = torch.stack(
            [
                m.roll((int(dy), int(dx)), dims=(0, 1))
                for m, (dy, dx) in zip(masks, shifts, strict=True)
            ]
        )
        fp = torch.zeros(1, HEIGHT, WIDTH, dtype=torch.bool)
        fp[0, 30:44, 2:20] = True
        keep = torch.arange(len(masks)) != (0 if img_id == 2 else -1)  # one missed
        out.append(
            Detections(
                torch.cat([boxes[keep], torch.tensor([[2.0, 30.0, 20.0, 44.0]])]),
                torch.rand(int(keep.sum()) + 1, generator=g),
                torch.cat([labels[keep], torch.tensor([img_id % 2])]),
                torch.cat([moved[keep], fp]),
            )
        )
    return out


class MaskPredictor(nn.Module):
    """A stand-in mask detector: `shifted_detections` of the image each meta names, at its
    original size (what a mask head's paste-back gives), so eval/predict run end to end."""

    def __init__(self, coco: Any):
        super().__init__()
        self.coco = coco
        self.num_classes = len(CLASSES)

    def forward(self, img: Any, img_metas: Any, return_loss: bool = False) -> list[Detections]:
        if isinstance(img, list):  # MultiScaleFlipAug's views (one here): the first view's
            img_metas = img_metas[0]
        out = []
        for meta in img_metas:
            img_id = int(Path(meta["filename"]).stem)  # 001.png is image 1 (predict has no ids)
            h, w = meta["ori_shape"][:2]
            assert (h, w) == (HEIGHT, WIDTH)
            out.append(shifted_detections(self.coco, [img_id])[0])
        return out

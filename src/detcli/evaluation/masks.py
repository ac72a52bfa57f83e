"""Predicted instance masks as COCO RLE: what results files hold and what segm evaluation reads.

A mask head predicts bool (K, H, W) masks at the original image size; a COCO-sized evaluation
cannot hold those for every image (5000 images x 100 detections x 640x480 bits is 19 GB), so the
inference loop encodes each batch's masks right away (`encode_masks`) and keeps only the RLE
(a few hundred bytes per instance). RLE `counts` are `str`, as in COCO results json files.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from detcli.errors import DataError, ModelError
from detcli.structures import Detections

if TYPE_CHECKING:
    import torch

RLE = dict[str, Any]  # {"size": [h, w], "counts": str}


def masks_to_rles(masks: torch.Tensor) -> list[RLE]:
    """COCO RLEs (counts as str) of bool (K, H, W) masks, in one pycocotools call."""
    import torch
    from pycocotools import mask as mask_utils

    if masks.dim() != 3:
        raise ModelError(f"Predicted masks must be (K, H, W); got shape {tuple(masks.shape)}.")
    if masks.shape[0] == 0:
        return []
    # pycocotools reads (H, W, K) in Fortran order, which is the C order of (K, W, H): one
    # transposing copy into uint8, and numpy sees its transpose as Fortran-ordered (no copy).
    k, h, w = masks.shape
    kwh = torch.empty((k, w, h), dtype=torch.uint8).copy_(masks.detach().transpose(1, 2))
    rles: list[RLE] = mask_utils.encode(kwh.numpy().transpose(2, 1, 0))
    for rle in rles:
        rle["counts"] = rle["counts"].decode("ascii")
    return rles


def rles_to_masks(rles: list[RLE], height: int, width: int) -> torch.Tensor:
    """Bool (K, height, width) masks from COCO RLEs (counts as str or bytes)."""
    import torch
    from pycocotools import mask as mask_utils

    if not rles:
        return torch.zeros(0, height, width, dtype=torch.bool)
    hwk = mask_utils.decode([_bytes_counts(r) for r in rles])  # uint8 (H, W, K), Fortran order
    return torch.from_numpy(np.ascontiguousarray(hwk.transpose(2, 0, 1))).bool()


def mask_areas(rles: list[RLE]) -> np.ndarray:
    """Pixel count of each RLE mask (float64), as COCO's `area` of a segm result."""
    from pycocotools import mask as mask_utils

    if not rles:
        return np.zeros(0)
    encoded = [_bytes_counts(r) for r in rles]
    # pycocotools' `area` stores the count of masks in a uint8 under numpy 2: at most 255 a call.
    chunks = [encoded[i : i + 255] for i in range(0, len(encoded), 255)]
    return np.concatenate([np.asarray(mask_utils.area(c), np.float64) for c in chunks])


def mask_boxes(rles: list[RLE]) -> np.ndarray:
    """The xywh box of each RLE mask (float64 (K, 4)), for results files without `bbox`."""
    from pycocotools import mask as mask_utils

    if not rles:
        return np.zeros((0, 4))
    return np.asarray(mask_utils.toBbox([_bytes_counts(r) for r in rles]), np.float64)


def _bytes_counts(rle: RLE) -> RLE:
    """pycocotools' C functions take compressed counts as bytes; files hold str."""
    counts = rle["counts"]
    if isinstance(counts, str):
        return {"size": rle["size"], "counts": counts.encode("ascii")}
    if isinstance(counts, list):  # uncompressed RLE (as in crowd annotations): compress it
        from pycocotools import mask as mask_utils

        h, w = rle["size"]
        compressed: RLE = mask_utils.frPyObjects(rle, h, w)
        return compressed
    return rle


def encode_masks(det: Detections) -> Detections:
    """`det` with its masks as RLE (`rles`) and the bitmaps dropped; as it is without masks."""
    if det.masks is None:
        return det
    if det.masks.shape[0] != len(det):
        raise ModelError(
            f"The model predicted {det.masks.shape[0]} masks for {len(det)} detections; a mask "
            "head must give one mask per detection."
        )
    return Detections(det.boxes, det.scores, det.labels, None, masks_to_rles(det.masks))


def require_rles(detections: Sequence[Detections], what: str) -> list[list[RLE]]:
    """Each image's RLEs, or a clear error when the detections carry no masks."""
    out: list[list[RLE]] = []
    for det in detections:
        if det.rles is None and det.masks is not None:
            det = encode_masks(det)
        if det.rles is None:
            if len(det) == 0:
                out.append([])
                continue
            raise DataError(
                f"{what} asks for metric segm, but the detections carry no masks: the model has "
                "no mask head (model.roi_head.mask_head), or the results file has no "
                "`segmentation`. Use metric: bbox, or a Mask R-CNN config."
            )
        if len(det.rles) != len(det):
            raise ModelError(f"{len(det.rles)} masks for {len(det)} detections of one image.")
        out.append(det.rles)
    return out

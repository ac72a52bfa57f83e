"""The `segmentation` of every annotation, held as one byte buffer for the dataloader workers.

A list of polygon lists per annotation is millions of Python objects on a COCO-sized set; each
worker touching them copies their pages (reference counts). Here each segmentation is stored
as its JSON text in one numpy byte array with offsets, and decoded only for the image a worker
loads: the same trick as mmengine's `serialize_data`, for the one field that is not a number.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from detcli.errors import DataError


class SegmentTable:
    """Segmentations by row: `table[rows]` gives the COCO `segmentation` values of those rows."""

    def __init__(self, buffer: np.ndarray, offsets: np.ndarray, usable: np.ndarray):
        self.buffer = buffer  # uint8: JSON texts back to back
        self.offsets = offsets  # int64 (R + 1,)
        self.usable = usable  # bool (R,): the segmentation covers a region (stats count these)

    @classmethod
    def from_annotations(
        cls, ann_file: str, anns: Sequence[dict[str, Any]], rows: np.ndarray, crowd: np.ndarray
    ) -> SegmentTable:
        """The segmentations of `anns[rows]`; DataError naming the file and the first
        annotation id when a non-crowd annotation has none (`with_mask` needs them)."""
        from detcli.data.masks import segmentation_is_usable

        texts: list[bytes] = []
        usable = np.zeros(len(rows), dtype=bool)
        for k, (row, is_crowd) in enumerate(zip(rows.tolist(), crowd.tolist(), strict=True)):
            seg = anns[row].get("segmentation")
            usable[k] = segmentation_is_usable(seg)
            if seg is None and not is_crowd:
                missing = sum(
                    "segmentation" not in anns[r] for r, c in zip(rows, crowd, strict=True) if not c
                )
                raise DataError(
                    f"Annotation file {ann_file}: annotation id {anns[row].get('id')} (image id "
                    f"{anns[row].get('image_id')}) has no `segmentation`, and the pipeline loads "
                    f"masks (LoadAnnotations with_mask: true); {missing} annotation(s) lack one. "
                    f"Use an instance-segmentation json, or set with_mask: false."
                )
            # crowd regions stay ignore boxes: their (often large) RLE is never read
            texts.append(b"null" if is_crowd else json.dumps(seg, separators=(",", ":")).encode())
        lengths = np.fromiter((len(t) for t in texts), np.int64, len(texts))
        buffer = np.frombuffer(b"".join(texts), dtype=np.uint8) if texts else np.zeros(0, np.uint8)
        return cls(buffer, np.concatenate(([0], np.cumsum(lengths))).astype(np.int64), usable)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, rows: np.ndarray) -> list[Any]:
        starts, ends = self.offsets[rows], self.offsets[np.asarray(rows) + 1]
        return [
            json.loads(self.buffer[a:b].tobytes())
            for a, b in zip(starts.tolist(), ends.tolist(), strict=True)
        ]


def segmentation_missing(anns: Sequence[dict[str, Any]]) -> list[Any]:
    """Ids of the non-crowd annotations without a `segmentation` (what `check` reports)."""
    return [a.get("id") for a in anns if "segmentation" not in a and not a.get("iscrowd", 0)]

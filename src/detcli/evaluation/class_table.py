"""Per-class rows of an evaluation: ground-truth and detection counts, AP at several IoUs and sizes.

Read from the accumulated COCO precision array, so the numbers are the ones COCOeval's own
summary would give for one category (`nan` where a class has no ground truth to score).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from detcli.evaluation.coco_metric import CocoScores
from detcli.structures import CocoGroundTruth, Detections

AREAS = ("all", "small", "medium", "large")  # COCOeval's areaRng order


@dataclass
class ClassRow:
    """One class of the per-class table."""

    label: int
    name: str
    gts: int  # ground-truth boxes (crowd regions not counted)
    dets: int  # detections of this class over the evaluated images
    AP: float
    AP50: float
    AP75: float
    APs: float
    APm: float
    APl: float
    iou_type: str = "bbox"  # what the AP columns score: boxes, or masks (segm)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly dict (nan stays nan: json writes NaN)."""
        return asdict(self)


def _mean_valid(p: np.ndarray) -> float:
    """COCOeval's averaging: the mean over entries that are not -1 (nan when none are)."""
    valid = p[p > -1]
    return float(valid.mean()) if valid.size else float("nan")


def class_table(
    dataset: CocoGroundTruth, detections: Sequence[Detections], scores: CocoScores
) -> list[ClassRow]:
    """One row per class of `dataset`, from `score_detections`' precision array (of boxes or
    masks, as `scores.iou_type` says)."""
    precision = scores.precision  # (T, R, K, A, M)
    iou = scores.iou_thrs
    at = {thr: np.flatnonzero(np.isclose(iou, thr)) for thr in (0.5, 0.75)}
    _, _, labels, crowd = dataset.box_table()
    num_classes = len(dataset.CLASSES)
    gts = np.bincount(labels[~crowd], minlength=num_classes)
    det_labels = [d.labels.numpy() for d in detections if len(d)]
    dets = np.bincount(
        np.concatenate(det_labels) if det_labels else np.zeros(0, np.int64),
        minlength=num_classes,
    )
    rows = []
    for k, name in enumerate(dataset.CLASSES):
        p = precision[:, :, k, :, -1]  # every IoU and recall point, every area, most detections

        def ap_at(thr: float, p: np.ndarray = p) -> float:
            return _mean_valid(p[at[thr][0], :, 0]) if at[thr].size else float("nan")

        rows.append(
            ClassRow(
                label=k,
                name=str(name),
                gts=int(gts[k]),
                dets=int(dets[k]),
                AP=_mean_valid(p[:, :, 0]),
                AP50=ap_at(0.5),
                AP75=ap_at(0.75),
                APs=_mean_valid(p[:, :, 1]),
                APm=_mean_valid(p[:, :, 2]),
                APl=_mean_valid(p[:, :, 3]),
                iou_type=scores.iou_type,
            )
        )
    return rows

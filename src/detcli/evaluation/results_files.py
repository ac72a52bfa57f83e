"""Results files: COCO results json, competition CSV, a streamed partial file, and loading back.

- COCO results json: a list of `{image_id, category_id, bbox: [x, y, w, h], score}` with the
  dataset's ORIGINAL category ids (what COCO servers and `COCO.loadRes` read). A segm results
  json (`*.segm.json`, a mask head's) adds `segmentation`: the mask as COCO RLE (counts str),
  as MMDetection writes it.
- CSV (`PredictionString,image_id`): one row per image, `image_id` is the image's `file_name`
  and PredictionString is `label score xmin ymin xmax ymax ...` with `label` the class INDEX
  in the config's `classes` order, as the recycling-trash competition's submissions use.
- Partial file (`<out>.partial.jsonl`): one JSON line per image, appended while evaluation
  runs, so an interrupted run keeps what it predicted; the final file replaces it at the end.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from detcli.data.coco_json import index_of
from detcli.errors import DataError
from detcli.evaluation.coco_metric import IouType, detections_to_array
from detcli.evaluation.masks import RLE, mask_boxes, require_rles
from detcli.structures import CocoGroundTruth, Detections

CSV_HEADER = ("PredictionString", "image_id")
# How far a results box may reach past its image before the file is taken for another
# dataset's: detectors clip to the image, so this only absorbs rounding and padding.
OUTSIDE_TOLERANCE_PX = 2.0
OUTSIDE_TOLERANCE_FRACTION = 0.02


def coco_results(
    dataset: CocoGroundTruth, detections: Sequence[Detections], segm: bool = False
) -> list[dict[str, Any]]:
    """COCO results dicts (original category ids, xywh boxes) for one Detections per image;
    with `segm`, each with its mask's RLE `segmentation` instead of its box."""
    rles = require_rles(detections, "A segm results file") if segm else None
    rows = detections_to_array(dataset, detections)
    ids = rows[:, 0].astype(np.int64).tolist()
    cats = rows[:, 6].astype(np.int64).tolist()
    # float32 values as doubles: the file scores exactly like the in-memory detections
    boxes = rows[:, 1:5].astype(np.float32).astype(np.float64).tolist()
    scores = rows[:, 5].astype(np.float32).astype(np.float64).tolist()
    results = [
        {"image_id": i, "category_id": c, "bbox": b, "score": s}
        for i, c, b, s in zip(ids, cats, boxes, scores, strict=True)
    ]
    if rles is not None:
        # COCO's segm results format: mask and score, no `bbox`. With a `bbox`, pycocotools and
        # faster-coco-eval size a result (small/medium/large) by its box, not its mask, so the
        # file would not score as detcli printed (mmdet drops `bbox` before scoring for the same
        # reason).
        flat = (r for per_image in rles for r in per_image)
        for result, rle in zip(results, flat, strict=True):
            del result["bbox"]
            result["segmentation"] = rle
    return results


def _atomic_write(path: Path, text: str) -> Path:
    """Write `text` next to `path` and rename: a reader never sees half a results file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def write_results_json(
    path: Path, dataset: CocoGroundTruth, detections: Sequence[Detections]
) -> Path:
    """The COCO results json of `detections` (one per image, dataset order)."""
    return _atomic_write(path, json.dumps(coco_results(dataset, detections)))


def write_segm_json(path: Path, dataset: CocoGroundTruth, detections: Sequence[Detections]) -> Path:
    """The COCO segm results json of `detections`: each result with its RLE `segmentation`."""
    return _atomic_write(path, json.dumps(coco_results(dataset, detections, segm=True)))


def segm_path(path: Path) -> Path:
    """Where the segm results go next to the bbox results file `path`
    (`results_val.bbox.json` -> `results_val.segm.json`, `out.json` -> `out.segm.json`)."""
    name = path.name
    if name.endswith(".bbox.json"):
        return path.with_name(name[: -len(".bbox.json")] + ".segm.json")
    return path.with_name(f"{path.stem}.segm.json")


def prediction_string(det: Detections) -> str:
    """`label score xmin ymin xmax ymax ...` for one image (class index, xyxy pixels)."""
    if not len(det):
        return ""
    table = np.column_stack([det.labels.numpy(), det.scores.numpy(), det.boxes.numpy()]).astype(
        np.float64
    )
    out = io.StringIO()
    np.savetxt(out, table, fmt=["%d", "%.6f", "%.2f", "%.2f", "%.2f", "%.2f"], newline=" ")
    return out.getvalue().strip()


def write_prediction_csv(
    path: Path, dataset: CocoGroundTruth, detections: Sequence[Detections]
) -> Path:
    """The competition CSV: `PredictionString,image_id` with one row per image (file_name)."""
    if len(detections) != len(dataset):
        raise DataError(
            f"{len(detections)} detection lists for a dataset of {len(dataset)} images; "
            "pass one `Detections` per image, in dataset order."
        )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for idx, det in enumerate(detections):
        writer.writerow((prediction_string(det), dataset.get_img_info(idx)["file_name"]))
    return _atomic_write(path, out.getvalue())


def write_results(
    path: Path, dataset: CocoGroundTruth, detections: Sequence[Detections], fmt: str = "json"
) -> Path:
    """`write_results_json` or `write_prediction_csv` by `fmt` ("json" | "csv")."""
    if fmt == "csv":
        return write_prediction_csv(path, dataset, detections)
    if fmt == "json":
        return write_results_json(path, dataset, detections)
    raise DataError(f"Unknown results format {fmt!r}; use json or csv.")


class PartialResults:
    """Appends each image's detections to `<path>.partial.jsonl` as soon as they exist."""

    def __init__(self, path: Path):
        self.path = partial_path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: TextIO | None = self.path.open("w", encoding="utf-8")
        self.count = 0

    def add(self, image_id: int, det: Detections) -> None:
        """One JSON line: the image id and its boxes (xyxy, original pixels), scores, labels
        (and the masks as RLE when the model predicts them)."""
        assert self._file is not None
        record: dict[str, Any] = {
            "image_id": int(image_id),
            "boxes": det.boxes.tolist(),
            "scores": det.scores.tolist(),
            "labels": det.labels.tolist(),
        }
        if det.rles is not None:
            record["segmentations"] = det.rles
        self._file.write(json.dumps(record) + "\n")
        self.count += 1

    def flush(self) -> None:
        """Hand the lines written so far to the OS (they survive the process being killed)."""
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        """Close the file, keeping it (an interrupted run's results)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def discard(self) -> None:
        """Close and delete it: the final results file now holds everything."""
        self.close()
        self.path.unlink(missing_ok=True)


def partial_path(path: Path) -> Path:
    """Where results stream while an evaluation writing `path` runs."""
    return path.with_name(path.name + ".partial.jsonl")


def load_results_json(path: Path, dataset: CocoGroundTruth) -> list[Detections]:
    """A COCO results json read back as one Detections per dataset image (dataset order).

    Every image id and category id must belong to `dataset`: a file made for another
    dataset (or another `classes` subset) is refused rather than scored as near zero.
    A segm results file (every entry with a `segmentation` RLE) gives Detections with `rles`;
    its entries may leave out `bbox` (then it is the mask's box).
    """
    return load_results(path, dataset)[0]


def load_results(path: Path, dataset: CocoGroundTruth) -> tuple[list[Detections], list[IouType]]:
    """`load_results_json`, and what the file holds to be scored: `bbox` when its entries have
    boxes, `segm` when they have masks (a segm file in COCO's format has masks only)."""
    import torch

    rows = _read_rows(path)
    ann = getattr(dataset, "ann_file", "the dataset")
    img_ids = np.asarray(dataset.img_ids, np.int64)
    cat_ids = np.asarray(dataset.cat_ids, np.int64)
    rles = _segmentations(path, rows)
    try:
        image = np.fromiter((r["image_id"] for r in rows), np.int64, len(rows))
        cat = np.fromiter((r["category_id"] for r in rows), np.int64, len(rows))
        score = np.fromiter((r["score"] for r in rows), np.float32, len(rows))
        boxes_given = rles is None or all("bbox" in r for r in rows)
        if not boxes_given:
            assert rles is not None
            xywh = mask_boxes(rles).astype(np.float32)
        else:
            xywh = np.asarray([r["bbox"] for r in rows], np.float32).reshape(-1, 4)
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise DataError(
            f"Results file {path}: every entry needs image_id, category_id, bbox [x, y, w, h] "
            f"and score ({type(exc).__name__}: {exc})."
        ) from None
    finite = np.isfinite(score) & np.isfinite(xywh).all(axis=1)
    if not finite.all():
        k = int(np.flatnonzero(~finite)[0])
        raise DataError(
            f"Results file {path}: {int((~finite).sum())} entries have a NaN or infinite score "
            f"or bbox (e.g. image id {image[k]}: bbox {xywh[k].tolist()}, score {score[k]}). "
            "Re-export the results; detcli does not score a file it cannot trust."
        )
    img_order = np.argsort(img_ids, kind="stable")
    index = index_of(img_ids[img_order], img_order, image)
    cat_order = np.argsort(cat_ids, kind="stable")
    label = index_of(cat_ids[cat_order], cat_order, cat)
    bad_img = np.unique(image[index < 0])
    bad_cat = np.unique(cat[label < 0])
    if bad_img.size or bad_cat.size:
        parts = []
        if bad_img.size:
            parts.append(
                f"{bad_img.size} image id(s) that are not images of {ann} "
                f"(e.g. {', '.join(map(str, bad_img[:5]))})"
            )
        if bad_cat.size:
            parts.append(
                f"{bad_cat.size} category id(s) outside the dataset's classes "
                f"{list(dataset.CLASSES)} = ids {cat_ids.tolist()} "
                f"(e.g. {', '.join(map(str, bad_cat[:5]))})"
            )
        raise DataError(
            f"Results file {path} is for a different dataset: it holds {' and '.join(parts)}. "
            "Score it with the config (and split, --set classes) it was predicted on."
        )
    boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
    if rles is not None:  # first: a mask of another size also puts its box elsewhere
        _refuse_masks_of_other_sizes(path, ann, dataset, index, rles)
    _refuse_boxes_outside(path, ann, dataset, index, boxes)
    order = np.argsort(index, kind="stable")
    splits = np.cumsum(np.bincount(index, minlength=img_ids.size))[:-1]
    per_box = (torch.from_numpy(boxes[order]), torch.from_numpy(score[order]))
    labels = torch.from_numpy(label[order].astype(np.int64))
    ordered_rles = [rles[k] for k in order.tolist()] if rles is not None else None
    bounds = [0, *splits.tolist(), len(rows)]
    detections = [
        Detections(
            per_box[0][a:b],
            per_box[1][a:b],
            labels[a:b],
            rles=None if ordered_rles is None else ordered_rles[a:b],
        )
        for a, b in itertools.pairwise(bounds)
    ]
    kinds: list[IouType] = []
    if boxes_given:
        kinds.append("bbox")
    if rles is not None:
        kinds.append("segm")
    return detections, kinds


def _segmentations(path: Path, rows: list[dict[str, Any]]) -> list[RLE] | None:
    """The entries' RLE masks when the file is a segm results file; None for a bbox file."""
    with_segm = sum("segmentation" in r for r in rows)
    if with_segm == 0:
        return None
    if with_segm != len(rows):
        raise DataError(
            f"Results file {path}: {with_segm} of {len(rows)} entries have a `segmentation`; "
            "a segm results file needs one per entry (a bbox file none)."
        )
    rles = [r["segmentation"] for r in rows]
    for k, rle in enumerate(rles):
        size = rle.get("size") if isinstance(rle, dict) else None
        counts = rle.get("counts") if isinstance(rle, dict) else None
        if (
            not isinstance(size, list)
            or len(size) != 2
            or not all(isinstance(v, int) for v in size)
            or not isinstance(counts, str | list)
        ):
            raise DataError(
                f"Results file {path}: entry {k} has segmentation {str(rle)[:80]}; a segm "
                "result holds the mask as COCO RLE {size: [height, width], counts: ...}."
            )
    return rles


def _refuse_masks_of_other_sizes(
    path: Path, ann: str, dataset: CocoGroundTruth, index: np.ndarray, rles: list[RLE]
) -> None:
    """A mask must cover its whole image: a different size means another dataset's file."""
    image_sizes = getattr(dataset, "image_sizes", None)
    if image_sizes is None:
        return
    sizes = np.asarray(image_sizes(), np.int64)[index]  # (N, 2) width, height
    hw = np.asarray([r["size"] for r in rles], np.int64).reshape(-1, 2)
    wrong = (hw[:, ::-1] != sizes).any(axis=1)
    if not wrong.any():
        return
    k = int(np.flatnonzero(wrong)[0])
    raise DataError(
        f"Results file {path} does not fit {ann}: {int(wrong.sum())} of {len(rles)} masks are "
        f"not the size of their image (e.g. image id {dataset.img_ids[index[k]]}: a "
        f"{hw[k, 1]}x{hw[k, 0]} mask for a {sizes[k, 0]}x{sizes[k, 1]} image). Score it with "
        "the config (and split) it was predicted on."
    )


def _refuse_boxes_outside(
    path: Path, ann: str, dataset: CocoGroundTruth, index: np.ndarray, boxes: np.ndarray
) -> None:
    """A results file whose ids overlap another dataset's still betrays itself: detectors clip
    their boxes to the image, so boxes reaching well beyond their image were predicted on
    other (larger) images. Refused rather than scored as a plausible-looking number."""
    image_sizes = getattr(dataset, "image_sizes", None)
    if not len(boxes) or image_sizes is None:
        return
    sizes = np.asarray(image_sizes(), np.float64)[index]  # (N, 2) width, height
    tol = OUTSIDE_TOLERANCE_PX + OUTSIDE_TOLERANCE_FRACTION * sizes
    outside = (boxes[:, :2] < -tol).any(axis=1) | (boxes[:, 2:] > sizes + tol).any(axis=1)
    if not outside.any():
        return
    k = int(np.flatnonzero(outside)[0])
    x1, y1, x2, y2 = (round(float(v), 1) for v in boxes[k])
    raise DataError(
        f"Results file {path} does not fit {ann}: {int(outside.sum())} of {len(boxes)} boxes "
        f"lie beyond their image (e.g. image id {dataset.img_ids[index[k]]}: xyxy [{x1}, {y1}, "
        f"{x2}, {y2}] in a {sizes[k, 0]:g}x{sizes[k, 1]:g} image). It was most likely predicted "
        "on another dataset whose image ids overlap this one's; detcli does not score it. "
        "Score it with the config (and split) it was predicted on."
    )


def _read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise DataError(f"Results file {path} does not exist.")
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"Results file {path} is not valid JSON: {exc}.") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise DataError(
            f"Results file {path} must hold a JSON list of COCO results "
            "({image_id, category_id, bbox, score} per detection)."
        )
    return rows

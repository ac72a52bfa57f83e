"""COCO bbox and segm metrics for `list[Detections]` against a dataset's COCO annotations.

`evaluate_detections(dataset, detections)` returns the 12 standard COCO numbers
(`bbox_mAP`, `bbox_mAP_50`, `bbox_mAP_75`, `bbox_mAP_s/m/l`, `bbox_AR@1/10/100`,
`bbox_AR_s/m/l@100`) and per-class AP (`bbox_AP/<class>`, `bbox_AP50/<class>`), computed by
faster-coco-eval when installed (the same numbers as pycocotools, in C++) or by pycocotools.
`metric="segm"` scores the detections' masks (`Detections.rles`, or `masks` encoded on the way)
against the annotations' `segmentation` under the same names with a `segm_` prefix.
The dataset supplies `coco` (the ground truth), `img_ids` (dataset order), `cat_ids`
(label -> COCO category id) and `CLASSES`. Only the dataset's images and categories count,
so a `classes` subset is scored on its own classes.
"""

from __future__ import annotations

import contextlib
import copy
import gc
import io
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, TypedDict

import numpy as np

from detcli.errors import DataError
from detcli.evaluation.masks import RLE, mask_areas, require_rles
from detcli.registry import METRICS
from detcli.structures import CocoGroundTruth, Detections

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing's own from Python 3.11

STAT_NAMES = (
    "mAP",
    "mAP_50",
    "mAP_75",
    "mAP_s",
    "mAP_m",
    "mAP_l",
    "AR@1",
    "AR@10",
    "AR@100",
    "AR_s@100",
    "AR_m@100",
    "AR_l@100",
)
Backend = Literal["auto", "faster_coco_eval", "pycocotools"]
IouType = Literal["bbox", "segm"]
IOU_TYPES: tuple[IouType, ...] = ("bbox", "segm")


class DetectionMetric(Protocol):
    """A METRICS entry: scores one detection list per image (dataset order) on a dataset."""

    def __call__(
        self, dataset: CocoGroundTruth, detections: Sequence[Detections]
    ) -> dict[str, float]: ...


class ScoreOptions(TypedDict, total=False):
    """`score_detections`' keyword arguments, for the functions that pass them on."""

    classwise: bool
    iou_thrs: Sequence[float] | None
    max_dets: Sequence[int]
    backend: Backend


def detections_to_array(dataset: CocoGroundTruth, detections: Sequence[Detections]) -> np.ndarray:
    """(N, 7) float64 rows `[image_id, x, y, w, h, score, category_id]` for every detection."""
    if len(detections) != len(dataset.img_ids):
        raise DataError(
            f"{len(detections)} detection lists for a dataset of {len(dataset.img_ids)} images; "
            "pass one `Detections` per image, in dataset order."
        )
    counts = np.fromiter((len(d) for d in detections), np.int64, len(detections))
    if counts.sum() == 0:
        return np.zeros((0, 7))
    boxes = np.concatenate([d.boxes.detach().cpu().double().numpy() for d in detections])
    scores = np.concatenate([d.scores.detach().cpu().double().numpy() for d in detections])
    labels = np.concatenate([d.labels.detach().cpu().numpy() for d in detections])
    cat_ids = np.asarray(dataset.cat_ids, np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= cat_ids.size):
        raise DataError(
            f"Detections hold label {int(labels.max())}, but the dataset has {cat_ids.size} "
            "classes; the model's num_classes does not match the dataset's classes."
        )
    img_ids = np.repeat(np.asarray(dataset.img_ids, np.float64), counts)
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
    return np.column_stack([img_ids, xywh, scores, cat_ids[labels].astype(np.float64)])


@dataclass
class CocoScores:
    """What one COCO evaluation produced: the named metrics and the accumulated precision."""

    metrics: dict[str, float]
    precision: np.ndarray  # (T iou thresholds, R recall points, K classes, A areas, M max dets)
    iou_thrs: np.ndarray  # (T,)
    rec_thrs: np.ndarray  # (R,)
    iou_type: IouType = "bbox"


def iou_types(metric: str | Sequence[str]) -> list[IouType]:
    """The COCO iou types a `metric` setting names (`bbox`, `segm` or both), checked."""
    names = [metric] if isinstance(metric, str) else list(metric)
    bad = [m for m in names if m not in IOU_TYPES]
    if bad or not names:
        raise DataError(
            f"CocoMetric: metric {bad or names} is not supported; detcli evaluates boxes and "
            "masks (metric: bbox, segm or [bbox, segm])."
        )
    return [t for t in IOU_TYPES if t in names]


def evaluate_detections(
    dataset: CocoGroundTruth,
    detections: Sequence[Detections],
    metric: str | Sequence[str] = "bbox",
    **options: Unpack[ScoreOptions],
) -> dict[str, float]:
    """COCO metrics of `detections` (one per image, dataset order) on `dataset` for each iou
    type in `metric`; the options are `score_detections`'."""
    metrics: dict[str, float] = {}
    for iou_type in iou_types(metric):
        metrics.update(score_detections(dataset, detections, iou_type=iou_type, **options).metrics)
    return metrics


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Cyclic GC off while COCO's per-box dicts are built and indexed: they hold no cycles,
    and collections triggered by a million new objects cost about a quarter of the time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@_no_gc()
def score_detections(
    dataset: CocoGroundTruth,
    detections: Sequence[Detections],
    *,
    iou_type: IouType = "bbox",
    classwise: bool = True,
    iou_thrs: Sequence[float] | None = None,
    max_dets: Sequence[int] = (1, 10, 100),
    backend: Backend = "auto",
) -> CocoScores:
    """One iou type of `evaluate_detections`, plus the precision array (per-class tables and
    PR curves use it)."""
    results = detections_to_array(dataset, detections)
    rles = None
    if iou_type == "segm":
        _require_segmentations(dataset)
        rles = [r for per_image in require_rles(detections, "The evaluation") for r in per_image]
    coco_eval = _coco_eval(dataset, results, backend, iou_type, rles)
    params = coco_eval.params
    params.imgIds = list(dataset.img_ids)
    params.catIds = list(dataset.cat_ids)
    params.maxDets = list(max_dets)
    if iou_thrs is not None:
        params.iouThrs = np.asarray(iou_thrs, np.float64)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    names = [n.replace("@100", f"@{max_dets[-1]}") for n in STAT_NAMES]
    names[6:9] = [f"AR@{m}" for m in max_dets]
    metrics = {
        f"{iou_type}_{name}": float(v) for name, v in zip(names, coco_eval.stats[:12], strict=True)
    }
    precision = np.asarray(coco_eval.eval["precision"])
    if classwise:
        metrics.update(_per_class(precision, params, dataset.CLASSES, iou_type))
    return CocoScores(
        metrics, precision, np.asarray(params.iouThrs), np.asarray(params.recThrs), iou_type
    )


def _require_segmentations(dataset: CocoGroundTruth) -> None:
    """Masks are scored against the annotations' `segmentation`: every one must have it."""
    anns = dataset.coco.dataset.get("annotations") or []
    missing = [a for a in anns if not a.get("segmentation")]
    if missing:
        where = getattr(dataset, "ann_file", "the dataset's annotation file")
        raise DataError(
            f"metric segm scores masks against the annotations' `segmentation`, but {len(missing)} "
            f"of {len(anns)} annotations in {where} have none (e.g. annotation id "
            f"{missing[0].get('id')}). Use metric: bbox, or annotations with masks."
        )


def _per_class(
    precision: np.ndarray, params: Any, classes: Sequence[str], iou_type: IouType = "bbox"
) -> dict[str, float]:
    """AP and AP50 per class from the accumulated precision (T, R, K, A, M); nan: no boxes."""
    out: dict[str, float] = {}
    iou50 = np.flatnonzero(np.isclose(params.iouThrs, 0.5))
    for k, name in enumerate(classes):
        p = precision[:, :, k, 0, -1]  # all IoUs, all recalls, area "all", most detections
        valid = p[p > -1]
        out[f"{iou_type}_AP/{name}"] = float(valid.mean()) if valid.size else float("nan")
        if iou50.size:
            p50 = p[iou50[0]]
            valid50 = p50[p50 > -1]
            out[f"{iou_type}_AP50/{name}"] = float(valid50.mean()) if valid50.size else float("nan")
    return out


def _ids_from_one(gt: dict[str, Any]) -> dict[str, Any] | None:
    """The ground truth with annotation ids 1..N when one id is 0, else None.

    COCOeval records a match as the matched box's id, so a ground-truth box with id 0 is never
    matched and its correct detection counts as a false positive (Roboflow exports start at 0).
    """
    anns = gt["annotations"]
    if not any(a["id"] == 0 for a in anns):
        return None
    return dict(gt, annotations=[dict(a, id=k) for k, a in enumerate(anns, 1)])


def _coco_eval(
    dataset: CocoGroundTruth,
    results: np.ndarray,
    backend: Backend,
    iou_type: IouType = "bbox",
    rles: list[RLE] | None = None,
) -> Any:
    renumbered = _ids_from_one(dataset.coco.dataset)
    if backend in ("auto", "faster_coco_eval"):
        try:
            from faster_coco_eval import COCO, COCOeval_faster
        except ImportError:
            if backend == "faster_coco_eval":
                raise DataError(
                    "backend faster_coco_eval is not installed: pip install faster-coco-eval."
                ) from None
        else:
            gt = COCO(dict(renumbered or dataset.coco.dataset))
            dt = _results(COCO, gt, results, rles)
            return COCOeval_faster(gt, dt, iou_type, print_function=lambda *_: None)
    from pycocotools.coco import COCO as PyCOCO
    from pycocotools.cocoeval import COCOeval

    gt = dataset.coco
    if renumbered is not None:
        gt = PyCOCO()
        gt.dataset = renumbered
        with contextlib.redirect_stdout(io.StringIO()):
            gt.createIndex()
    return COCOeval(gt, _results(PyCOCO, gt, results, rles), iou_type)


def _results(coco_cls: Any, gt: Any, results: np.ndarray, rles: list[RLE] | None = None) -> Any:
    """A COCO object of the detections, built the way `loadRes` builds one for boxes (area
    w*h, ids from 1, not crowd) but from whole columns: `loadRes` of an array walks it row by
    row and adds a polygon per box that box evaluation never reads (a third of eval time).
    With `rles` (segm), each result holds its mask and the mask's area, as `loadRes` gives a
    result with only a `segmentation` (the area decides small/medium/large)."""
    image_ids = results[:, 0].astype(np.int64).tolist()
    cat_ids = results[:, 6].astype(np.int64).tolist()
    boxes = results[:, 1:5].tolist()
    scores = results[:, 5].tolist()
    areas = (results[:, 3] * results[:, 4] if rles is None else mask_areas(rles)).tolist()
    columns = zip(image_ids, cat_ids, boxes, scores, areas, strict=True)
    anns = [
        {"id": k, "image_id": i, "category_id": c, "bbox": b, "score": s, "area": a, "iscrowd": 0}
        for k, (i, c, b, s, a) in enumerate(columns, 1)
    ]
    if rles is not None:
        for ann, rle in zip(anns, rles, strict=True):
            ann["segmentation"] = rle
    res = coco_cls()
    res.dataset = {
        "images": list(gt.dataset["images"]),
        "categories": copy.deepcopy(gt.dataset["categories"]),
        "annotations": anns,
    }
    with contextlib.redirect_stdout(io.StringIO()):
        res.createIndex()
    return res


@METRICS.register()
class CocoMetric:
    """COCO mAP/AR (12 numbers) and per-class AP of a model's boxes (`metric: bbox`), masks
    (`segm`) or both (`[bbox, segm]`) on a dataset.

    MMDetection 3.x's arguments: `format_only` writes `<outfile_prefix>.bbox.json` (and
    `<outfile_prefix>.segm.json` for segm) and scores nothing (a test set without labels);
    `outfile_prefix` alone also keeps the results files.
    `ann_file` must be the file the dataset reads: detcli scores against the dataset's own
    annotations (with its `classes` selection), so another file would be silently ignored.
    """

    # Accepted for MMDetection configs, with no effect here (`detcli check` notes them).
    NO_EFFECT_ARGS: ClassVar[dict[str, str]] = {
        "backend_args": "detcli reads local files",
        "file_client_args": "detcli reads local files",
        "collect_device": "detcli gathers detections from every process itself",
        "prefix": "metric names are detcli's (bbox_mAP); save_best: coco/bbox_mAP is understood",
        "sort_categories": "categories are scored in the dataset's order",
        "use_mp_eval": "faster-coco-eval is already multi-threaded C++",
        "metric_items": "every COCO number is printed and logged",
    }

    def __init__(
        self,
        metric: str | list[str] = "bbox",
        classwise: bool = True,
        iou_thrs: list[float] | None = None,
        proposal_nums: Sequence[int] = (1, 10, 100),
        backend: Backend = "auto",
        ann_file: str | None = None,
        format_only: bool = False,
        outfile_prefix: str | None = None,
        backend_args: dict[str, Any] | None = None,
        file_client_args: dict[str, Any] | None = None,
        collect_device: Literal["cpu", "gpu"] = "cpu",
        prefix: str | None = None,
        sort_categories: bool = False,
        use_mp_eval: bool = False,
        metric_items: list[str] | None = None,
    ):
        self.iou_types = iou_types(metric)
        if format_only and not outfile_prefix:
            raise DataError(
                "CocoMetric: format_only needs outfile_prefix (where <prefix>.bbox.json goes)."
            )
        self.classwise = classwise
        self.iou_thrs = iou_thrs
        self.max_dets = tuple(proposal_nums)
        self.backend = backend
        self.ann_file = ann_file
        self.format_only = format_only
        self.outfile_prefix = outfile_prefix

    def __call__(
        self, dataset: CocoGroundTruth, detections: Sequence[Detections]
    ) -> dict[str, float]:
        """The metrics of `detections` (one per image, dataset order) on `dataset`."""
        self._check_ann_file(dataset)
        if self.outfile_prefix:
            from detcli.evaluation.results_files import write_results_json, write_segm_json

            for iou_type in self.iou_types:
                path = Path(f"{self.outfile_prefix}.{iou_type}.json")
                write = write_segm_json if iou_type == "segm" else write_results_json
                write(path, dataset, detections)
        if self.format_only:
            return {}
        return evaluate_detections(
            dataset,
            detections,
            self.iou_types,
            classwise=self.classwise,
            iou_thrs=self.iou_thrs,
            max_dets=self.max_dets,
            backend=self.backend,
        )

    def _check_ann_file(self, dataset: CocoGroundTruth) -> None:
        own = getattr(dataset, "ann_file", None)
        if self.ann_file is None or own is None:
            return
        if os.path.realpath(self.ann_file) != os.path.realpath(own):
            raise DataError(
                f"CocoMetric.ann_file is {self.ann_file}, but the dataset it scores reads {own}; "
                "detcli scores against the dataset's own annotations. Point both at the same "
                "file (or drop ann_file)."
            )

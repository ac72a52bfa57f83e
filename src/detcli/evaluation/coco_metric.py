"""COCO bbox metrics for `list[Detections]` against a dataset's COCO annotations.

`evaluate_detections(dataset, detections)` returns the 12 standard COCO numbers
(`bbox_mAP`, `bbox_mAP_50`, `bbox_mAP_75`, `bbox_mAP_s/m/l`, `bbox_AR@1/10/100`,
`bbox_AR_s/m/l@100`) and per-class AP (`bbox_AP/<class>`, `bbox_AP50/<class>`), computed by
faster-coco-eval when installed (the same numbers as pycocotools, in C++) or by pycocotools.
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


def evaluate_detections(
    dataset: CocoGroundTruth, detections: Sequence[Detections], **options: Unpack[ScoreOptions]
) -> dict[str, float]:
    """COCO bbox metrics of `detections` (one per image, dataset order) on `dataset`; the
    options are `score_detections`'."""
    return score_detections(dataset, detections, **options).metrics


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
    classwise: bool = True,
    iou_thrs: Sequence[float] | None = None,
    max_dets: Sequence[int] = (1, 10, 100),
    backend: Backend = "auto",
) -> CocoScores:
    """`evaluate_detections` plus the precision array (per-class tables and PR curves use it)."""
    results = detections_to_array(dataset, detections)
    coco_eval = _coco_eval(dataset, results, backend)
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
        f"bbox_{name}": float(v) for name, v in zip(names, coco_eval.stats[:12], strict=True)
    }
    precision = np.asarray(coco_eval.eval["precision"])
    if classwise:
        metrics.update(_per_class(precision, params, dataset.CLASSES))
    return CocoScores(metrics, precision, np.asarray(params.iouThrs), np.asarray(params.recThrs))


def _per_class(precision: np.ndarray, params: Any, classes: Sequence[str]) -> dict[str, float]:
    """AP and AP50 per class from the accumulated precision (T, R, K, A, M); nan: no boxes."""
    out: dict[str, float] = {}
    iou50 = np.flatnonzero(np.isclose(params.iouThrs, 0.5))
    for k, name in enumerate(classes):
        p = precision[:, :, k, 0, -1]  # all IoUs, all recalls, area "all", most detections
        valid = p[p > -1]
        out[f"bbox_AP/{name}"] = float(valid.mean()) if valid.size else float("nan")
        if iou50.size:
            p50 = p[iou50[0]]
            valid50 = p50[p50 > -1]
            out[f"bbox_AP50/{name}"] = float(valid50.mean()) if valid50.size else float("nan")
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


def _coco_eval(dataset: CocoGroundTruth, results: np.ndarray, backend: Backend) -> Any:
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
            dt = _results(COCO, gt, results)
            return COCOeval_faster(gt, dt, "bbox", print_function=lambda *_: None)
    from pycocotools.coco import COCO as PyCOCO
    from pycocotools.cocoeval import COCOeval

    gt = dataset.coco
    if renumbered is not None:
        gt = PyCOCO()
        gt.dataset = renumbered
        with contextlib.redirect_stdout(io.StringIO()):
            gt.createIndex()
    return COCOeval(gt, _results(PyCOCO, gt, results), "bbox")


def _results(coco_cls: Any, gt: Any, results: np.ndarray) -> Any:
    """A COCO object of the detections, built the way `loadRes` builds one for boxes (area
    w*h, ids from 1, not crowd) but from whole columns: `loadRes` of an array walks it row by
    row and adds a polygon per box that box evaluation never reads (a third of eval time)."""
    image_ids = results[:, 0].astype(np.int64).tolist()
    cat_ids = results[:, 6].astype(np.int64).tolist()
    boxes = results[:, 1:5].tolist()
    scores = results[:, 5].tolist()
    areas = (results[:, 3] * results[:, 4]).tolist()
    columns = zip(image_ids, cat_ids, boxes, scores, areas, strict=True)
    anns = [
        {"id": k, "image_id": i, "category_id": c, "bbox": b, "score": s, "area": a, "iscrowd": 0}
        for k, (i, c, b, s, a) in enumerate(columns, 1)
    ]
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
    """COCO bbox mAP/AR (12 numbers) and per-class AP of a model's detections on a dataset.

    MMDetection 3.x's arguments: `format_only` writes `<outfile_prefix>.bbox.json` and scores
    nothing (a test set without labels); `outfile_prefix` alone also keeps the results file.
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
        metrics = [metric] if isinstance(metric, str) else list(metric)
        unsupported = [m for m in metrics if m != "bbox"]
        if unsupported:
            raise DataError(
                f"CocoMetric: metric {unsupported} is not supported; detcli evaluates boxes "
                "(metric: bbox)."
            )
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
            from detcli.evaluation.results_files import write_results_json

            path = Path(f"{self.outfile_prefix}.bbox.json")
            path.parent.mkdir(parents=True, exist_ok=True)
            write_results_json(path, dataset, detections)
        if self.format_only:
            return {}
        return evaluate_detections(
            dataset,
            detections,
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

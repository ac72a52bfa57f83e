"""`detcli.evaluate(cfg, checkpoint)`: COCO evaluation of a checkpoint on a split of its config.

Results stream to `<out>.partial.jsonl` while the model runs (an interrupted evaluation keeps
what it predicted), then the results file (`json`: COCO results, `csv`: PredictionString
rows) replaces it. Unless `format_only`, the detections are scored: the 12 COCO numbers, a
per-class table and, with `plot_dir`, one precision-recall PNG per class; for boxes, and for
masks too when the config's metric names `segm` (a Mask R-CNN's `metric: [bbox, segm]`): then
a segm results json with RLE `segmentation` (`results_<split>.segm.json`) is written as well.
`evaluate_results` scores an existing COCO results json instead of running a model (its
masks too when it is a segm results file).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from detcli.config import format_path
from detcli.config.settings import read_run_settings
from detcli.data.protocol import CocoStyleDataset, checked_coco_style
from detcli.engine.inference_loop import BatchResults, inference
from detcli.engine.setup import resolve_device
from detcli.engine.threads import configure_threads
from detcli.errors import DataError, DetcliError
from detcli.evaluation.class_table import ClassRow, class_table
from detcli.evaluation.coco_metric import IOU_TYPES, IouType, score_detections
from detcli.evaluation.pr_curves import plot_pr_curves
from detcli.evaluation.results_files import (
    PartialResults,
    load_results,
    segm_path,
    write_results,
    write_segm_json,
)
from detcli.inference.model_loading import Precision, load_detector, prepare
from detcli.inference.session import as_config
from detcli.inference.tta import MergeMethod, ViewMerger, merge_settings, tta_dataset_cfg
from detcli.plugins import load_plugins
from detcli.structures import Detections

ResultsFormat = Literal["json", "csv"]


class EvaluationInterrupted(DetcliError):
    """Ctrl-C / SIGTERM during evaluation; the partial results file keeps what was done."""

    exit_code = 130

    def __init__(self, message: str, partial: Path | None, done: int, total: int):
        super().__init__(message)
        self.partial, self.done, self.total = partial, done, total


@dataclass
class EvalResult:
    """What an evaluation produced; `metrics` and `classes` are empty with `format_only`."""

    split: str
    num_images: int
    detections: list[Detections]
    metrics: dict[str, float] = field(default_factory=dict)
    classes: list[ClassRow] = field(default_factory=list)
    results_file: Path | None = None
    segm_file: Path | None = None  # the segm results json, when masks were evaluated
    metrics_file: Path | None = None
    plots: list[Path] = field(default_factory=list)
    precision: str = "fp32"
    tta: str | None = None  # the merge method when test-time augmentation ran
    seconds: float = 0.0  # wall time of the inference loop
    iou_types: list[IouType] = field(default_factory=lambda: ["bbox"])  # what was scored


def evaluate(
    cfg: Any,
    checkpoint: str | Path,
    *,
    split: str = "val",
    out: str | Path | None = None,
    fmt: ResultsFormat = "json",
    format_only: bool = False,
    tta: bool = False,
    tta_merge: MergeMethod = "nms",
    tta_scales: Sequence[Sequence[int]] | None = None,
    batch_size: int | None = None,
    workers: int | None = None,
    device: str | None = None,
    bf16: bool = False,
    fp16: bool = False,
    channels_last: bool = False,
    plot_dir: str | Path | None = None,
    metrics_file: str | Path | None = None,
    on_start: Callable[[int], None] | None = None,
    on_batch: Callable[[int], None] | None = None,
    threads: int | Literal["auto"] | None = None,
) -> EvalResult:
    """Run the checkpoint over `data.<split>`, write results, and score them (see module doc).

    `threads`: torch CPU threads, as `detcli.train`'s (None leaves torch's setting)."""
    from detcli.data import build_dataloader

    load_plugins()  # an entry point: the config may name plugins' types
    cfg = as_config(cfg)
    settings = read_run_settings(cfg)
    loader_settings = settings.loader(split)
    if tta:
        where = format_path(loader_settings.dataset_path)
        tta_cfg = tta_dataset_cfg(loader_settings.dataset, where, tta_scales)
        loader_settings = replace(loader_settings, dataset=tta_cfg)
    dev = resolve_device(device or settings.env.device)
    precision = Precision(bf16=bf16, fp16=fp16, channels_last=channels_last)
    precision.check(dev)
    num_workers = loader_settings.num_workers if workers is None else workers
    configure_threads(threads, settings.env.threads, workers=num_workers)
    loader = build_dataloader(loader_settings, batch_size=batch_size, num_workers=workers)
    dataset = checked_coco_style(loader.dataset, format_path(loader_settings.dataset_path))
    types = config_iou_types(settings.evaluation.metrics_for(split))
    if not format_only:
        _require_annotations(dataset, split)
    model, _ = load_detector(settings, checkpoint, device=dev, dataset_classes=dataset.CLASSES)
    runner = prepare(model, precision)
    if tta and tta_merge != "mean":
        iou, max_dets = merge_settings(settings.model, tta_merge)
        runner = ViewMerger(runner, tta_merge, iou, max_dets)
    out_path = Path(out) if out is not None else None
    partial = PartialResults(out_path) if out_path is not None else None

    def on_results(batch: BatchResults) -> None:
        assert partial is not None
        for idx, det in zip(batch.indices, batch.detections, strict=True):
            partial.add(dataset.img_ids[idx], det)
        partial.flush()

    if on_start is not None:
        on_start(len(dataset))
    start = time.perf_counter()
    try:
        detections = inference(
            runner,
            loader,
            device=dev,
            autocast=precision.autocast(dev),
            on_batch=on_batch,
            on_results=on_results if partial is not None else None,
        )
    except KeyboardInterrupt:
        if partial is None:
            raise EvaluationInterrupted(
                "evaluation stopped (no results file was asked for).", None, 0, len(dataset)
            ) from None
        partial.close()
        raise EvaluationInterrupted(
            f"evaluation stopped after {partial.count} of {len(dataset)} images; the "
            f"{partial.count} images done are in {partial.path}.",
            partial.path,
            partial.count,
            len(dataset),
        ) from None
    finally:
        if partial is not None:
            partial.close()  # kept on disk unless the final file replaces it below
    result = EvalResult(
        split,
        len(dataset),
        detections,
        precision=precision.describe(),
        tta=tta_merge if tta else None,
        seconds=time.perf_counter() - start,
        iou_types=types,
    )
    if out_path is not None and partial is not None:
        result.results_file = write_results(out_path, dataset, detections, fmt)
        if "segm" in types and fmt == "json":
            result.segm_file = write_segm_json(segm_path(out_path), dataset, detections)
        partial.discard()
    if not format_only:
        _score(result, dataset, plot_dir, metrics_file)
    return result


def evaluate_results(
    cfg: Any,
    results_file: str | Path,
    *,
    split: str = "val",
    plot_dir: str | Path | None = None,
    metrics_file: str | Path | None = None,
) -> EvalResult:
    """Score an existing COCO results json on `data.<split>` (its ids must be that dataset's)."""
    from detcli.data import build_dataset

    load_plugins()  # an entry point: the config may name plugins' types
    cfg = as_config(cfg)
    loader_settings = read_run_settings(cfg).loader(split)
    where = format_path(loader_settings.dataset_path)
    dataset = checked_coco_style(
        build_dataset(loader_settings.dataset, test_mode=True, where=where), where
    )
    _require_annotations(dataset, split)
    # a file is scored for what it holds: boxes if it has them, masks if it is a segm file
    detections, kinds = load_results(Path(results_file), dataset)
    result = EvalResult(
        split, len(dataset), detections, results_file=Path(results_file), iou_types=kinds
    )
    _score(result, dataset, plot_dir, metrics_file)
    return result


def config_iou_types(metrics: Sequence[dict[str, Any]]) -> list[IouType]:
    """What the split's CocoMetric entries score (`bbox`, `segm`), bbox when none says."""
    wanted: set[str] = set()
    for metric in metrics:
        if metric.get("type") == "CocoMetric":
            names = metric.get("metric", "bbox")
            wanted.update([names] if isinstance(names, str) else names)
    return [t for t in IOU_TYPES if t in wanted] or ["bbox"]


def _require_annotations(dataset: CocoStyleDataset, split: str) -> None:
    coco = dataset.coco
    if coco is not None and not coco.dataset.get("annotations"):
        raise DataError(
            f"data.{split} ({dataset.ann_file}) has no annotations to score "
            "against; pass --format-only to write the results file without scoring."
        )


def _score(
    result: EvalResult,
    dataset: CocoStyleDataset,
    plot_dir: str | Path | None,
    metrics_file: str | Path | None,
) -> None:
    result.metrics, result.classes, result.plots = {}, [], []
    for iou_type in result.iou_types:
        scores = score_detections(dataset, result.detections, iou_type=iou_type)
        result.metrics.update(scores.metrics)
        result.classes += class_table(dataset, result.detections, scores)
        if plot_dir is not None:
            result.plots += plot_pr_curves(scores, list(dataset.CLASSES), Path(plot_dir))
    if metrics_file is not None:
        path = Path(metrics_file)
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "split": result.split,
            "images": result.num_images,
            "results_file": str(result.results_file) if result.results_file else None,
            "segm_file": str(result.segm_file) if result.segm_file else None,
            "precision": result.precision,
            "tta": result.tta,
            "metrics": {k: _finite(v) for k, v in result.metrics.items()},
            "classes": [
                {k: _finite(v) for k, v in row.as_dict().items()} for row in result.classes
            ],
        }
        path.write_text(json.dumps(record, indent=1), encoding="utf-8")
        result.metrics_file = path


def _finite(value: Any) -> Any:
    """JSON has no NaN: a class without ground truth scores null."""
    return None if isinstance(value, float) and math.isnan(value) else value

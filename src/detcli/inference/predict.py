"""`detcli.predict(cfg, checkpoint, inputs)`: detections for image files, folders and globs.

With `out_dir`, each image gets `<name>.json` (boxes xyxy in original pixels, scores, class
indices and names; a mask model's masks as COCO RLE `segmentation`) and `<name>.png` (the
boxes and masks drawn), written as soon as its batch is done. Full-size masks live only until
their image's files are written; `PredictResult` keeps them as RLE (`Detections.rles`).
Images that cannot be read are reported in `PredictResult.skipped`; the rest go on.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from detcli.config.settings import RunSettings, read_run_settings
from detcli.data.classes import config_classes
from detcli.engine.inference_loop import BatchResults, inference
from detcli.engine.setup import resolve_device
from detcli.engine.threads import configure_threads
from detcli.evaluation.masks import encode_masks
from detcli.inference.inputs import collect_images, image_loader
from detcli.inference.model_loading import (
    Precision,
    checkpoint_classes,
    load_detector,
    prepare,
)
from detcli.inference.session import as_config
from detcli.plugins import load_plugins
from detcli.structures import Detections


@dataclass
class ImagePrediction:
    """One image's detections above the score threshold, and the files written for it."""

    file: Path
    width: int
    height: int
    detections: Detections
    json_path: Path | None = None
    png_path: Path | None = None


@dataclass
class PredictResult:
    """Everything `predict` did: per-image predictions (input order) and skipped images."""

    predictions: list[ImagePrediction]
    skipped: list[tuple[Path, str]]
    classes: list[str]
    out_dir: Path | None
    seconds: float  # wall time of the inference loop (loading, model, writing)
    precision: str = "fp32"


def predict(
    cfg: Any,
    checkpoint: str | Path,
    inputs: Sequence[str | Path],
    *,
    out_dir: str | Path | None = None,
    score_thr: float = 0.3,
    device: str | None = None,
    batch_size: int = 1,
    workers: int = 0,
    bf16: bool = False,
    fp16: bool = False,
    channels_last: bool = False,
    draw: bool = True,
    on_start: Callable[[int], None] | None = None,
    on_batch: Callable[[int], None] | None = None,
    threads: int | Literal["auto"] | None = None,
) -> PredictResult:
    """Run the config's model with the checkpoint's weights over images; see module doc.

    `threads`: torch CPU threads, as `detcli.train`'s (None leaves torch's setting)."""
    load_plugins()  # an entry point: the config may name plugins' types
    settings = read_run_settings(as_config(cfg))
    configure_threads(threads, settings.env.threads, workers=workers)
    files = collect_images(inputs)
    dev = resolve_device(device or settings.env.device)
    precision = Precision(bf16=bf16, fp16=fp16, channels_last=channels_last)
    precision.check(dev)
    model, meta = load_detector(settings, checkpoint, device=dev)
    classes = _class_names(settings, meta, getattr(model, "num_classes", None))
    palette = _palette(settings, len(classes))
    loader = image_loader(files, settings, batch_size, workers)
    out = Path(out_dir) if out_dir is not None else None
    names = _output_names(files) if out is not None else []
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    predictions: list[ImagePrediction] = []
    skipped: list[tuple[Path, str]] = []
    # Files are written by one background thread while the model runs on the next batch
    # (torchvision's PNG encoder runs without the GIL); `pending` keeps their errors.
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="detcli-predict-writer")
    pending: list[Future[None]] = []

    def write(pred: ImagePrediction, drawn: Detections, name: str) -> None:
        assert out is not None
        pred.json_path = _write_json(out / f"{name}.json", pred, classes)
        if draw:
            png = out / f"{name}.png"
            pred.png_path = _write_png(png, pred, drawn, classes, palette, score_thr)

    def on_results(batch: BatchResults) -> None:
        for idx, det, meta_i in zip(batch.indices, batch.detections, batch.img_metas, strict=True):
            if idx in batch.failed:
                skipped.append((files[idx], batch.failed[idx]))
                continue
            assert meta_i is not None
            kept = above(det, score_thr)
            h, w = (int(v) for v in meta_i["ori_shape"][:2])
            # the bitmaps go to the drawing only; the prediction keeps their RLE
            pred = ImagePrediction(files[idx], w, h, replace(kept, masks=None))
            if out is not None:
                pending.append(writer.submit(write, pred, kept, names[idx]))
            predictions.append(pred)

    if on_start is not None:
        on_start(len(files))
    start = time.perf_counter()
    try:
        inference(
            prepare(model, precision),
            loader,
            device=dev,
            autocast=precision.autocast(dev),
            on_batch=on_batch,
            on_results=on_results,
        )
        for future in pending:
            future.result()  # re-raises a failed write
    finally:
        writer.shutdown(wait=True, cancel_futures=True)
    seconds = time.perf_counter() - start
    return PredictResult(predictions, skipped, classes, out, seconds, precision.describe())


def above(det: Detections, score_thr: float) -> Detections:
    """The detections scoring at least `score_thr`, with their masks and RLEs."""
    keep = det.scores >= score_thr
    masks = None if det.masks is None else det.masks[keep]
    rles = None
    if det.rles is not None:
        rles = [r for r, k in zip(det.rles, keep.tolist(), strict=True) if k]
    return Detections(det.boxes[keep], det.scores[keep], det.labels[keep], masks, rles)


def _class_names(settings: RunSettings, meta: dict[str, Any], num_classes: int | None) -> list[str]:
    """Class names: the checkpoint's, else the config's `classes`, else class_0, class_1, ..."""
    names = checkpoint_classes({"meta": meta}) or config_classes(settings)
    if names is None or (num_classes is not None and len(names) != num_classes):
        names = [f"class_{k}" for k in range(num_classes or 0)]
    return names


def _output_names(files: Sequence[Path]) -> list[str]:
    """A distinct output stem per input (`a.png`, `sub/a.png` -> `a`, `a_1`)."""
    taken: set[str] = set()
    names = []
    for f in files:
        name, n = f.stem, 0
        while name in taken:
            n += 1
            name = f"{f.stem}_{n}"
        taken.add(name)
        names.append(name)
    return names


def prediction_record(pred: ImagePrediction, classes: Sequence[str]) -> dict[str, Any]:
    """The JSON written per image: file, size and detections (xyxy original pixels; with a
    mask model, each mask as COCO RLE `segmentation`, counts a string)."""
    det = pred.detections
    boxes = det.boxes.double().round(decimals=2).tolist()
    scores = det.scores.double().round(decimals=5).tolist()
    labels = det.labels.tolist()
    detections: list[dict[str, Any]] = [
        {"label": k, "class": classes[k], "score": s, "box_xyxy": b}
        for k, s, b in zip(labels, scores, boxes, strict=True)
    ]
    rles = det.rles if det.rles is not None or det.masks is None else encode_masks(det).rles
    if rles is not None:
        for record, rle in zip(detections, rles, strict=True):
            record["segmentation"] = rle
    return {
        "file": str(pred.file),
        "width": pred.width,
        "height": pred.height,
        "detections": detections,
    }


def _write_json(path: Path, pred: ImagePrediction, classes: Sequence[str]) -> Path:
    record = prediction_record(pred, classes)
    dets = record.pop("detections")
    head = json.dumps(record)[:-1]  # one detection per line: readable, still plain JSON
    lines = ",\n  ".join(json.dumps(d) for d in dets)
    body = f'{head}, "detections": [\n  {lines}\n]}}\n' if dets else f'{head}, "detections": []}}\n'
    path.write_text(body, encoding="utf-8")
    return path


def _write_png(
    path: Path,
    pred: ImagePrediction,
    drawn: Detections,
    classes: Sequence[str],
    palette: list[tuple[int, int, int]] | None,
    score_thr: float | None = None,
) -> Path:
    from detcli.data.transforms.loading import load_image
    from detcli.visualization import write_drawn

    img = load_image(str(pred.file))
    written: Path = write_drawn(path, img, drawn, classes, palette, score_thr)
    return written


def _palette(settings: RunSettings, num_classes: int) -> list[tuple[int, int, int]] | None:
    """The config's `metainfo.palette` (one colour per class), when it has one for each class."""
    for split in ("test", "val", "train"):
        dataset = settings.loaders[split].dataset if split in settings.loaders else {}
        palette = (dataset.get("metainfo") or {}).get("palette")
        if isinstance(palette, list) and len(palette) == num_classes:
            return [(int(r), int(g), int(b)) for r, g, b in palette]
    return None

"""`detcli eval` (COCO evaluation, results files) and `detcli predict` (images -> JSON + PNG)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from detcli.cli.options import ConfigArg, DeviceOption, SetOption, ThreadsOption
from detcli.cli.output import (
    console,
    err_console,
    load_plugins_reporting_failures,
    output_dir,
    output_file,
)
from detcli.engine.threads import ThreadChoice, configure_threads, prefer_passive_wait

if TYPE_CHECKING:
    from detcli.inference.evaluate import EvalResult


class EvalSplit(str, Enum):
    val = "val"
    test = "test"


class ResultsFormat(str, Enum):
    json = "json"
    csv = "csv"


class TtaMerge(str, Enum):
    nms = "nms"
    wbf = "wbf"
    mean = "mean"


# The 12 COCO numbers (`bbox_<stat>`, and `segm_<stat>` for masks) and how they are printed.
STAT_LABELS = {
    "mAP": "AP @[IoU=0.50:0.95]",
    "mAP_50": "AP @[IoU=0.50]",
    "mAP_75": "AP @[IoU=0.75]",
    "mAP_s": "AP small",
    "mAP_m": "AP medium",
    "mAP_l": "AP large",
    "AR@1": "AR maxDets=1",
    "AR@10": "AR maxDets=10",
    "AR@100": "AR maxDets=100",
    "AR_s@100": "AR small",
    "AR_m@100": "AR medium",
    "AR_l@100": "AR large",
}

BatchOption = Annotated[
    int | None, typer.Option("--batch-size", min=1, help="Images per forward pass.")
]
WorkersOption = Annotated[
    int | None, typer.Option("--workers", min=0, help="Data loading worker processes.")
]
Bf16Option = Annotated[
    bool, typer.Option("--bf16", help="bfloat16 autocast (CPU or CUDA); weights stay fp32.")
]
Fp16Option = Annotated[bool, typer.Option("--fp16", help="float16 autocast (CUDA only).")]
ChannelsLastOption = Annotated[
    bool, typer.Option("--channels-last", help="channels-last memory format (faster CPU convs).")
]


def _parse_scale(text: str) -> tuple[int, int]:
    from detcli.errors import ConfigError

    parts = text.lower().replace(",", "x").split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ConfigError(f"--tta-scale takes WIDTHxHEIGHT (e.g. 160x160), got {text!r}.")
    return int(parts[0]), int(parts[1])


@contextmanager
def _progress(what: str) -> Iterator[tuple[Any, Any]]:
    """(on_start, on_batch) callbacks driving a rich progress bar over the images (stderr)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )
    task: list[Any] = []

    def on_start(total: int) -> None:
        task.append(progress.add_task(what, total=total))

    def on_batch(done: int) -> None:
        if task:
            progress.update(task[0], completed=done)

    with progress:
        yield on_start, on_batch


def _num(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) or value < 0 else f"{value:.3f}"


def print_metrics(result: EvalResult, title: str) -> None:
    """The 12 COCO numbers and the per-class table of an evaluation (also used by `demo`):
    one column of numbers (`value`) for boxes only, a `bbox` and a `segm` column with masks."""
    console.print(f"[bold]{title}[/]", soft_wrap=True)  # above, not a title: paths stay whole
    types = [t for t in ("bbox", "segm") if f"{t}_mAP" in result.metrics] or ["bbox"]
    table = Table()
    table.add_column("metric")
    for iou_type in types:
        table.add_column("value" if types == ["bbox"] else iou_type, justify="right")
    for stat, label in STAT_LABELS.items():
        values = [result.metrics.get(f"{t}_{stat}") for t in types]
        if any(v is not None for v in values):
            table.add_row(label, *(_num(v) if v is not None else "-" for v in values))
    console.print(table)
    columns = ("label", "class", "gts", "dets", "AP", "AP50", "AP75", "APs", "APm", "APl")
    for iou_type in types:
        title = "per class" if types == ["bbox"] else f"per class ({iou_type})"
        per_class = Table(title=title, title_justify="left")
        for column in columns:
            per_class.add_column(column, justify="left" if column == "class" else "right")
        for row in result.classes:
            if row.iou_type != iou_type:
                continue
            per_class.add_row(
                str(row.label), escape(row.name), str(row.gts), str(row.dets),
                *(_num(getattr(row, c)) for c in columns[4:]),
            )  # fmt: skip
        console.print(per_class)


def eval_(
    config: ConfigArg,
    checkpoint: Annotated[
        Path,
        typer.Argument(
            help="Checkpoint (.pth) to evaluate; or a COCO results .json to score as it is "
            "(a .segm.json with RLE segmentation scores masks too).",
            show_default=False,
        ),
    ],
    set_: SetOption = None,
    split: Annotated[EvalSplit, typer.Option("--split", help="Which data split.")] = (
        EvalSplit.val
    ),
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Results file (default: results_<split>.bbox.json or .csv next to the "
            "checkpoint; results_<split>.tta-<merge>.bbox.json with --tta, metrics likewise). "
            "With metric segm (a mask model) the masks go to results_<split>.segm.json (RLE). "
            "Streams to <out>.partial.jsonl while running.",
        ),
    ] = None,
    fmt: Annotated[
        ResultsFormat,
        typer.Option(
            "--format",
            help="json: COCO results (original category ids, xywh). csv: PredictionString,"
            "image_id rows ('label score xmin ymin xmax ymax ...', label = class index).",
        ),
    ] = ResultsFormat.json,
    format_only: Annotated[
        bool,
        typer.Option("--format-only", help="Write the results file only, do not score (test set)."),
    ] = False,
    tta: Annotated[
        bool,
        typer.Option(
            "--tta", help="Test-time augmentation: the pipeline's MultiScaleFlipAug + flip."
        ),
    ] = False,
    tta_merge: Annotated[
        TtaMerge,
        typer.Option(
            "--tta-merge",
            help="How views merge: nms (class-wise NMS), wbf (weighted box fusion), "
            "mean (the detector's aug_test: proposals merged, box scores averaged).",
        ),
    ] = TtaMerge.nms,
    tta_scale: Annotated[
        list[str] | None,
        typer.Option("--tta-scale", help="TTA scale WxH instead of img_scale; repeatable."),
    ] = None,
    batch_size: BatchOption = None,
    workers: WorkersOption = None,
    device: DeviceOption = None,
    bf16: Bf16Option = False,
    fp16: Fp16Option = False,
    channels_last: ChannelsLastOption = False,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot",
            help="Write one precision-recall PNG per class (and per class for masks: "
            "pr_segm_*) into this folder.",
        ),
    ] = None,
    threads: ThreadsOption = None,
) -> None:
    """COCO evaluation of a checkpoint (boxes; masks with metric segm): 12 numbers, per-class
    AP, results files."""
    prefer_passive_wait()  # before torch loads OpenMP
    from detcli.cli.config_input import load_run_config
    from detcli.inference.evaluate import (
        EvaluationInterrupted,
        evaluate,
        evaluate_results,
    )

    cfg, settings = load_run_config(config, set_)
    load_plugins_reporting_failures()
    if checkpoint.suffix.lower() == ".json":
        # results_val.tta-nms.bbox.json (or .segm.json) is scored into metrics_val.tta-nms.json
        name = checkpoint.name
        kind = next((k for k in (".bbox.json", ".segm.json") if name.endswith(k)), None)
        named = name.startswith("results_") and kind is not None
        stem = name[len("results_") : -len(kind)] if named and kind else split.value
        metrics_file = checkpoint.with_name(f"metrics_{stem}.json")
        result = evaluate_results(
            cfg, checkpoint, split=split.value, plot_dir=plot, metrics_file=metrics_file
        )
        print_metrics(result, f"{escape(str(checkpoint))} on data.{split.value}")
        _print_files(result)
        return
    suffix = ".csv" if fmt is ResultsFormat.csv else ".bbox.json"
    cfg_format_only, prefix = settings.evaluation.outputs(split.value)
    format_only = format_only or cfg_format_only  # the evaluator's format_only (3.x)
    # outputs named by what produced them: a TTA run never overwrites the plain run's files
    tag = f".tta-{tta_merge.value}" if tta else ""
    default = (
        Path(prefix + tag + suffix)
        if prefix
        else checkpoint.parent / f"results_{split.value}{tag}{suffix}"
    )
    out = output_file(out or default, "--out")
    if plot is not None:
        output_dir(plot, "--plot")
    num_workers = settings.loader(split.value).num_workers if workers is None else workers
    choice = _threads(threads, settings.env.threads, num_workers)
    try:
        with _progress(f"eval {split.value}") as (on_start, on_batch):
            result = evaluate(
                cfg,
                checkpoint,
                split=split.value,
                out=out,
                fmt=fmt.value,
                format_only=format_only,
                tta=tta,
                tta_merge=tta_merge.value,
                tta_scales=[_parse_scale(s) for s in tta_scale or []] or None,
                batch_size=batch_size,
                workers=workers,
                device=device,
                bf16=bf16,
                fp16=fp16,
                channels_last=channels_last,
                plot_dir=plot,
                metrics_file=(
                    None if format_only else out.with_name(f"metrics_{split.value}{tag}.json")
                ),
                on_start=on_start,
                on_batch=on_batch,
                threads=choice.threads,
            )
    except EvaluationInterrupted as exc:
        err_console.print(f"[yellow]interrupted:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None
    mode = f"{result.precision}" + (f", TTA merged by {result.tta}" if result.tta else "")
    speed = result.num_images / max(result.seconds, 1e-9)
    if not format_only:
        print_metrics(
            result, f"{escape(str(checkpoint))} on data.{split.value} ({result.num_images} images)"
        )
    console.print(
        f"[green]✓[/] {result.num_images} images in {result.seconds:.1f} s "
        f"({speed:.1f} img/s, {escape(mode)})",
        soft_wrap=True,
    )
    _print_files(result)


def _threads(flag: int | None, config_threads: int | None, workers: int) -> ThreadChoice:
    """Choose and apply torch's thread count (flag, config key, else the default); print it."""
    choice = configure_threads("auto" if flag is None else flag, config_threads, workers=workers)
    console.print(escape(choice.describe()), soft_wrap=True)
    return choice


def _print_files(result: EvalResult) -> None:
    if result.results_file is not None:
        console.print(f"results: {escape(str(result.results_file))}", soft_wrap=True)
    if result.segm_file is not None:
        console.print(f"segm results: {escape(str(result.segm_file))}", soft_wrap=True)
    if result.metrics_file is not None:
        console.print(f"metrics: {escape(str(result.metrics_file))}", soft_wrap=True)
    if result.plots:
        folder = result.plots[0].parent
        console.print(
            f"precision-recall curves: {len(result.plots)} PNGs in {escape(str(folder))}",
            soft_wrap=True,
        )


def predict(
    config: ConfigArg,
    checkpoint: Annotated[Path, typer.Argument(help="Checkpoint (.pth).", show_default=False)],
    inputs: Annotated[
        list[str],
        typer.Argument(
            help="Image files, folders (recursive) or glob patterns.", show_default=False
        ),
    ],
    set_: SetOption = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Folder for one JSON (masks as RLE `segmentation`) and one PNG (boxes and "
            "masks drawn) per image.",
        ),
    ] = None,
    score_thr: Annotated[
        float,
        typer.Option(
            "--score-thr", min=0.0, max=1.0, help="Keep detections scoring at least this."
        ),
    ] = 0.3,
    device: DeviceOption = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="Images per forward pass.")
    ] = 1,
    workers: Annotated[int, typer.Option("--workers", min=0, help="Loader processes.")] = 0,
    bf16: Bf16Option = False,
    fp16: Fp16Option = False,
    channels_last: ChannelsLastOption = False,
    draw: Annotated[
        bool, typer.Option("--draw/--no-draw", help="Also write the PNG with the boxes drawn.")
    ] = True,
    threads: ThreadsOption = None,
) -> None:
    """Detect objects in images; with --out, one JSON (+ PNG) per image."""
    prefer_passive_wait()  # before torch loads OpenMP
    from detcli.cli.config_input import load_run_config
    from detcli.errors import DataError
    from detcli.inference.predict import predict as run_predict

    cfg, settings = load_run_config(config, set_)
    if out is not None:
        output_dir(out, "--out")
    choice = _threads(threads, settings.env.threads, workers)
    load_plugins_reporting_failures()
    with _progress("predict") as (on_start, on_batch):
        result = run_predict(
            cfg,
            checkpoint,
            inputs,
            out_dir=out,
            score_thr=score_thr,
            device=device,
            batch_size=batch_size,
            workers=workers,
            bf16=bf16,
            fp16=fp16,
            channels_last=channels_last,
            draw=draw,
            on_start=on_start,
            on_batch=on_batch,
            threads=choice.threads,
        )
    for path, message in result.skipped:
        err_console.print(
            f"[yellow]skipped:[/] {escape(str(path))}: {escape(message)}", soft_wrap=True
        )
    if not result.predictions:
        raise DataError(
            f"None of the {len(result.skipped)} input images could be read; nothing predicted."
        )
    _print_predictions(result)


def _print_predictions(result: Any, shown: int = 20) -> None:
    table = Table(title="detections (score >= threshold)", title_justify="left")
    for column in ("image", "size", "detections", "classes"):
        table.add_column(column, justify="right" if column == "detections" else "left")
    for pred in result.predictions[:shown]:
        counts: dict[str, int] = {}
        for k in pred.detections.labels.tolist():
            counts[result.classes[k]] = counts.get(result.classes[k], 0) + 1
        names = ", ".join(f"{n} x{c}" for n, c in counts.items())
        table.add_row(
            escape(str(pred.file)), f"{pred.width}x{pred.height}", str(len(pred.detections)),
            escape(names),
        )  # fmt: skip
    console.print(table)
    if len(result.predictions) > shown:
        console.print(f"... and {len(result.predictions) - shown} more images")
    n = len(result.predictions) + len(result.skipped)
    line = (
        f"[green]✓[/] {len(result.predictions)} images predicted in {result.seconds:.1f} s "
        f"({n / max(result.seconds, 1e-9):.1f} img/s, {escape(result.precision)})"
    )
    if result.skipped:
        line += f"; {len(result.skipped)} skipped"
    if result.out_dir is not None:
        line += f"; JSON + PNG in {escape(str(result.out_dir))}"
    console.print(line, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("eval")(eval_)
    app.command("predict")(predict)

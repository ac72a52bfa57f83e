"""`detcli demo`: synthetic data, training, COCO evaluation and drawn predictions in one go."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from detcli.cli.options import DeviceOption, SetOption, ThreadsOption
from detcli.cli.output import console


def demo(
    out: Annotated[
        Path, typer.Option("--out", help="Folder for the data, the run, evaluation and drawings.")
    ] = Path("runs/demo"),
    device: DeviceOption = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", help="Another config to train (default: configs/demo/shapes.yaml)."
        ),
    ] = None,
    set_: SetOption = None,
    train_images: Annotated[
        int, typer.Option("--train-images", min=1, help="Synthetic training images to write.")
    ] = 500,
    val_images: Annotated[
        int, typer.Option("--val-images", min=1, help="Synthetic val images to write.")
    ] = 100,
    threads: ThreadsOption = None,
) -> None:
    """Write synthetic shapes, train a small Faster R-CNN on them, evaluate, draw predictions."""
    from detcli.engine.threads import prefer_passive_wait

    prefer_passive_wait()  # before torch loads OpenMP
    from detcli.cli.eval_cmds import print_metrics
    from detcli.demo import DemoData, run_demo

    start = time.perf_counter()
    result = run_demo(
        out,
        config=config,
        overrides=set_ or [],
        device=device,
        data=DemoData(train_images=train_images, val_images=val_images),
        threads="auto" if threads is None else threads,
        on_stage=lambda text: console.print(f"[bold cyan]demo:[/] {escape(text)}", soft_wrap=True),
    )
    total = time.perf_counter() - start
    print_metrics(
        result.evaluation, f"COCO bbox metrics, val split ({result.evaluation.num_images} images)"
    )
    stages = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in result.seconds.items())
    drawn = result.predictions.out_dir
    console.print(
        f"[green]✓[/] demo finished in {total:.0f} s ({stages}); "
        f"bbox mAP@[.5:.95] {result.evaluation.metrics.get('bbox_mAP', float('nan')):.3f}\n"
        f"  run:         {escape(str(result.train.work_dir))}\n"
        f"  results:     {escape(str(result.evaluation.results_file))}\n"
        f"  predictions: {escape(str(drawn))} (PNG + JSON per image)",
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("demo")(demo)

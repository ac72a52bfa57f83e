"""`detcli dataset`: write a synthetic set, and inspect a config's data (stats, lint, show)."""

from __future__ import annotations

from collections import Counter
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from detcli.cli.options import ConfigArg, SetOption
from detcli.cli.output import console, load_plugins_reporting_failures, output_dir

if TYPE_CHECKING:
    from detcli.data.inspect.lint import Problem
    from detcli.data.protocol import DetectionDataset

app = typer.Typer(
    name="dataset",
    help="Write a synthetic dataset, or inspect a config's data: stats, lint, show.",
    no_args_is_help=True,
)


class Split(str, Enum):
    train = "train"
    val = "val"
    test = "test"


class ImageFormat(str, Enum):
    png = "png"
    jpg = "jpg"


SplitOption = Annotated[Split, typer.Option("--split", help="Which data split of the config.")]


def _dataset_cfg(config: Path, sets: list[str] | None, split: Split) -> tuple[Any, Any]:
    """(merged config, its `split`'s dataset mapping); ConfigError if the split is not there."""
    from detcli.config import resolve_config
    from detcli.config.settings import read_run_settings

    resolved = resolve_config(config, sets or [])
    settings = read_run_settings(resolved.cfg, resolved.origins)
    return resolved.cfg, settings.loader(split.value).dataset


def _build(
    config: Path, sets: list[str] | None, split: Split, every_image: bool = False
) -> DetectionDataset:
    """The split's dataset; `every_image`: training filters off (eval splits keep all anyway)."""
    from detcli.data.builder import build_dataset, without_filtering

    _, dataset_cfg = _dataset_cfg(config, sets, split)
    load_plugins_reporting_failures()
    if split is not Split.train:
        return build_dataset(dataset_cfg, test_mode=True)
    if every_image:
        dataset_cfg = without_filtering(dataset_cfg)
    return build_dataset(dataset_cfg)


@app.command("synth")
def synth(
    out: Annotated[Path, typer.Argument(help="Folder to write <split>.json and <split>/ images.")],
    images: Annotated[int, typer.Option("--images", "-n", help="Images per split.")] = 32,
    classes: Annotated[int, typer.Option("--classes", help="Number of classes (shapes).")] = 3,
    size: Annotated[int, typer.Option("--size", help="Image side in pixels.")] = 256,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (each split offsets it).")] = 0,
    split: Annotated[
        list[str] | None, typer.Option("--split", help="Split name; repeat for several.")
    ] = None,
    fmt: Annotated[ImageFormat, typer.Option("--format", help="Image file format.")] = (
        ImageFormat.png
    ),
) -> None:
    """Write a synthetic COCO set of coloured shapes (real image files, exact boxes)."""
    import json

    from detcli.data.synthetic import shape_names, write_shapes_coco

    output_dir(out, "OUT")
    table = Table(title=f"synthetic shapes in {escape(str(out))}", title_justify="left")
    for column in ("split", "images", "boxes", "ann_file", "img_prefix"):
        table.add_column(column)
    for name in dict.fromkeys(split or ["train"]):
        ann_file, img_dir = write_shapes_coco(
            out, num_images=images, num_classes=classes, image_size=size, seed=seed,
            split=name, image_format=fmt.value,
        )  # fmt: skip
        boxes = len(json.loads(ann_file.read_text())["annotations"])
        table.add_row(name, str(images), str(boxes), escape(str(ann_file)), escape(f"{img_dir}/"))
    console.print(table)
    console.print(escape(f"classes: [{', '.join(shape_names(classes))}]"))


@app.command("stats")
def stats(
    config: ConfigArg,
    set_: SetOption = None,
    split: SplitOption = Split.train,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write the histograms to this PNG file.")
    ] = None,
) -> None:
    """Counts per class, COCO size classes, box aspect ratios and images without boxes."""
    from detcli.data.inspect.stats import dataset_stats, plot_stats

    dataset = _build(config, set_, split, every_image=True)  # classes as configured
    s = dataset_stats(dataset)
    summary = Table(title=f"{escape(str(config))}: data.{split.value}", title_justify="left")
    summary.add_column("")
    summary.add_column("value", justify="right")
    widths, heights = s.image_sizes[:, 0], s.image_sizes[:, 1]
    rows = [
        ("images", s.num_images),
        ("boxes (targets)", s.num_boxes),
        ("crowd regions (ignored)", s.num_crowd),
        *([("masks (with_mask)", s.num_masks)] if s.num_masks is not None else []),
        ("images without boxes", s.images_without_boxes),
        ("boxes per image (mean)", f"{s.boxes_per_image.mean():.2f}" if s.num_images else "-"),
        (
            "image width x height (min .. max)",
            f"{widths.min()}x{heights.min()} .. {widths.max()}x{heights.max()}"
            if s.num_images
            else "-",
        ),
    ]
    for label, value in rows:
        summary.add_row(label, str(value))
    console.print(summary)

    per_class = Table(title="per class", title_justify="left")
    masks = s.masks_per_class
    for column in ("label", "class", "boxes", "images", *(["masks"] if masks is not None else [])):
        per_class.add_column(column, justify="right" if column != "class" else "left")
    for k, name in enumerate(s.classes):
        cells = [int(s.boxes_per_class[k]), int(s.images_per_class[k])]
        cells += [int(masks[k])] if masks is not None else []
        per_class.add_row(str(k), escape(name), *map(str, cells))
    console.print(per_class)

    sizes = Table(title="box sizes (COCO: area < 32², < 96², larger)", title_justify="left")
    for column in ("small", "medium", "large"):
        sizes.add_column(column, justify="right")
    counts = s.size_counts()
    total = max(s.num_boxes, 1)
    sizes.add_row(*(f"{counts[k]} ({100 * counts[k] / total:.1f}%)" for k in counts))
    console.print(sizes)

    aspect = s.aspect_summary()
    if aspect:
        ratios = Table(title="box aspect ratio (width / height)", title_justify="left")
        for column in aspect:
            ratios.add_column(column, justify="right")
        ratios.add_row(*(f"{v:g}" for v in aspect.values()))
        console.print(ratios)
    if plot is not None:
        plot_stats(s, plot, title=f"{config} data.{split.value}")
        console.print(f"histograms written to {escape(str(plot))}")


@app.command("lint")
def lint(
    config: ConfigArg,
    set_: SetOption = None,
    split: Annotated[
        list[Split] | None, typer.Option("--split", help="Only these splits (default: all).")
    ] = None,
    decode: Annotated[
        bool, typer.Option("--decode", help="Decode every image fully (finds truncated files).")
    ] = False,
    limit: Annotated[
        int, typer.Option("--limit", help="Problems listed per kind and file (0: all).")
    ] = 20,
) -> None:
    """List every annotation problem with its ids; exit 1 when there are errors."""
    from detcli.config import resolve_config
    from detcli.config.settings import read_run_settings
    from detcli.data.inspect.lint import dataset_sources, lint_coco

    resolved = resolve_config(config, set_ or [])
    settings = read_run_settings(resolved.cfg, resolved.origins)
    splits = [s.value for s in split] if split else list(settings.loaders) or ["train"]
    sources: dict[tuple[str, str], bool] = {}
    for name in splits:
        for ann_file, prefix, is_test in dataset_sources(settings.loader(name).dataset):
            test = is_test or name == "test"
            sources[(ann_file, prefix)] = sources.get((ann_file, prefix), True) and test
    problems: list[Problem] = []
    for (ann_file, prefix), test in sources.items():
        problems += lint_coco(ann_file, prefix, decode=decode, allow_no_annotations=test)
    _report_problems(problems, limit, len(sources))
    if any(p.severity == "error" for p in problems):
        raise typer.Exit(1)


def _report_problems(problems: list[Problem], limit: int, num_files: int) -> None:
    if not problems:
        console.print(f"[green]✓[/] {num_files} annotation file(s): no problems found.")
        return
    table = Table(title="annotation problems", title_justify="left")
    for column in ("kind", "severity", "count", "annotation file"):
        table.add_column(column)
    groups: dict[tuple[str, str, str], list[Problem]] = {}
    for p in problems:
        source = p.file if p.kind not in _FILE_KINDS else "(image files)"
        groups.setdefault((p.kind, p.severity, source), []).append(p)
    for (kind, severity, source), items in groups.items():
        colour = "red" if severity == "error" else "yellow"
        table.add_row(escape(kind), f"[{colour}]{severity}[/]", str(len(items)), escape(source))
    console.print(table)
    for (kind, _, _), items in groups.items():
        shown = items if limit <= 0 else items[:limit]
        console.print(f"[bold]{escape(kind)}[/]:")
        for p in shown:
            ids = f"[cyan]{escape(p.ids)}[/]: " if p.ids else ""
            console.print(f"  {ids}{escape(p.message)} [dim]({escape(p.file)})[/]", soft_wrap=True)
        if len(items) > len(shown):
            console.print(f"  ... and {len(items) - len(shown)} more (--limit 0 lists all)")
    kinds = Counter(p.severity for p in problems)
    console.print(f"{kinds['error']} error(s), {kinds['warning']} warning(s).")


_FILE_KINDS = {
    "missing image file",
    "unreadable image file",
    "image size mismatch",
    "image too large",
}


@app.command("show")
def show(
    config: ConfigArg,
    out: Annotated[Path, typer.Option("--out", help="Folder for the PNG files.")],
    set_: SetOption = None,
    split: SplitOption = Split.train,
    num: Annotated[int, typer.Option("-n", "--num", help="How many images.")] = 16,
    after_pipeline: Annotated[
        bool,
        typer.Option("--after-pipeline", help="Draw what the split's pipeline makes of them."),
    ] = False,
) -> None:
    """Draw images with their boxes and class names into PNG files."""
    from detcli.data.inspect.show import show_samples

    output_dir(out, "--out")
    dataset = _build(config, set_, split)
    written = show_samples(dataset, out, num, after_pipeline)
    what = "after the pipeline" if after_pipeline else "as annotated"
    console.print(
        f"{len(written)} image(s) of data.{split.value} {what} written to {escape(str(out))}"
    )

"""`detcli export`: a weights-only checkpoint for deployment."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from detcli.cli.output import console, output_file


def export(
    checkpoint: Annotated[Path, typer.Argument(help="A training checkpoint (e.g. best.pth).")],
    out: Annotated[Path, typer.Argument(help="The weights-only file to write (e.g. model.pth).")],
    half: Annotated[
        bool, typer.Option("--half", help="Store floating-point weights as float16 (half size).")
    ] = False,
) -> None:
    """Write weights + class names + config only (no optimizer, schedule or RNG state)."""
    from detcli.inference.export import export_weights

    output_file(out, "OUT")
    result = export_weights(checkpoint, out, half=half)
    mib = 2**20
    console.print(
        f"[green]✓[/] {escape(str(result.path))}: {result.tensors} tensors ({result.dtype}), "
        f"{result.bytes / mib:.1f} MiB (the checkpoint: {result.source_bytes / mib:.1f} MiB); "
        "use it with `detcli eval` / `detcli predict`.",
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("export")(export)

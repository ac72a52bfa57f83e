"""Command-line options shared by several commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ConfigArg = Annotated[
    Path,
    typer.Argument(
        help="Experiment config: YAML, JSON, or an MMDetection .py file (read, never run).",
        show_default=False,
    ),
]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        "-s",
        help="Override a config value after all files: KEY.PATH=VALUE (VALUE is YAML). Repeatable.",
        show_default=False,
    ),
]
DeviceOption = Annotated[
    str | None, typer.Option("--device", help="cpu, cuda or cuda:N (default: cuda when present).")
]
ThreadsOption = Annotated[
    int | None,
    typer.Option(
        "--threads",
        min=1,
        help="torch CPU threads per process (default: the config's `threads`, else chosen from "
        "the cores this process may use, minus busy ones and data-loader workers).",
    ),
]

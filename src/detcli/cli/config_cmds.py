"""`detcli print-config`, `detcli check` and `detcli convert-config`."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from detcli.cli.options import ConfigArg, SetOption
from detcli.cli.output import console, err_console, load_plugins_reporting_failures

if TYPE_CHECKING:
    from detcli.config.check import Problem


class Format(str, Enum):
    yaml = "yaml"
    json = "json"


def print_config(
    config: ConfigArg,
    set_: SetOption = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.yaml,
    show_origin: Annotated[
        bool,
        typer.Option(
            "--show-origin", help="Mark every value with the file:line or --set that gave it."
        ),
    ] = False,
) -> None:
    """Print the fully merged config (bases, overrides and ${...} references resolved)."""
    from detcli.config import render_config, resolve_config

    resolved = resolve_config(config, set_ or [])
    typer.echo(render_config(resolved, fmt.value, show_origin), nl=False)


def check(config: ConfigArg, set_: SetOption = None) -> None:
    """Validate a config without building anything heavy; list every problem. Exit 2 if any."""
    from detcli.config import resolve_config
    from detcli.config.check import check_config

    resolved = resolve_config(config, set_ or [])
    load_plugins_reporting_failures()
    findings = check_config(resolved)
    problems = [p for p in findings if not p.note and not p.warning]
    notes = [p for p in findings if p.note]
    warnings = [p for p in findings if p.warning]
    if notes:
        console.print(f"[yellow]notes[/] ({len(notes)}): keys accepted with no effect in detcli")
        _print_findings(notes)
    if warnings:
        console.print(f"[yellow]warnings[/] ({len(warnings)}): runs, but likely not as meant")
        _print_findings(warnings)
    if not problems:
        console.print(f"[green]✓[/] {escape(str(config))}: no problems found.", soft_wrap=True)
        return
    console.print(f"[red]✗[/] {len(problems)} problem(s) in {escape(str(config))}:", soft_wrap=True)
    _print_findings(problems)
    raise typer.Exit(2)


def convert_config(
    config: Annotated[
        Path, typer.Argument(help="MMDetection .py config to convert.", show_default=False)
    ],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="YAML file to write (default: print to stdout)."),
    ] = None,
    recursive: Annotated[
        bool,
        typer.Option("--recursive", "-r", help="Also convert the .py bases, next to each file."),
    ] = False,
) -> None:
    """Write a .py config's own keys as YAML, with `_base_` naming the bases' .yaml twins."""
    from detcli.config.convert import convert_py_config, write_conversions

    conversions = convert_py_config(config, out, recursive)
    write_conversions(conversions, overwrite_target=out)
    for conv in conversions:
        if conv.target is None:
            typer.echo(conv.text, nl=False)
        else:
            err_console.print(f"wrote {escape(str(conv.target))}", soft_wrap=True)
    missing = sorted({str(b) for conv in conversions for b in conv.unconverted_bases})
    if missing:
        err_console.print(
            "[yellow]note[/]: the YAML names these bases as .yaml files; convert them too "
            f"(or rerun with --recursive): {escape(', '.join(missing))}",
            soft_wrap=True,
        )


def _print_findings(findings: list[Problem]) -> None:
    for p in findings:  # a list, not a table: long messages stay readable and greppable
        where = f" [dim]({escape(p.origin)})[/]" if p.origin else ""
        console.print(
            f"  [bold cyan]{escape(p.where)}[/]{where}\n    {escape(p.message)}", soft_wrap=True
        )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("print-config")(print_config)
    app.command("check")(check)
    app.command("convert-config")(convert_config)

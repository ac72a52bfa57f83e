"""`detcli plugins` and `detcli types`: what is installed and what a config may name."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from detcli.cli.output import console, load_plugins_reporting_failures

if TYPE_CHECKING:
    from detcli.registry import Argument, Registry


def plugins() -> None:
    """List detcli's built-in types, then plugins with their versions and the types each added."""
    from detcli.plugins import PLUGIN_GROUP, autoload_disabled

    infos = load_plugins_reporting_failures()
    for info in infos:
        if info.builtin:
            counts = ", ".join(f"{len(names)} {kind}" for kind, names in info.registered.items())
            console.print(
                f"detcli {escape(info.version or '')} built-in types: {counts} "
                "(`detcli types KIND` lists them).",
                soft_wrap=True,
            )
    others = [info for info in infos if not info.builtin]
    if not others:
        console.print(
            "No plugins loaded: DETCLI_DISABLE_PLUGIN_AUTOLOAD is set."
            if autoload_disabled()
            else f"No plugins installed (packages with a `{PLUGIN_GROUP}` entry point)."
        )
        return
    table = Table(title="plugins", title_justify="left", show_lines=True)
    for column in ("plugin", "package", "version", "status", "registered"):
        table.add_column(column, overflow="fold")
    for info in others:
        status = (
            "[green]ok[/]" if info.ok else "[dim]disabled[/]" if info.disabled else "[red]failed[/]"
        )
        registered = "\n".join(
            f"{kind}: {', '.join(names)}" for kind, names in info.registered.items()
        )
        if info.replaced:
            registered += "\n[yellow]replaces " + ", ".join(info.replaced) + "[/]"
        if info.error:
            registered = f"[red]{escape(info.error)}[/]"
        table.add_row(
            escape(info.name),
            escape(info.distribution or "?"),
            escape(info.version or "?"),
            status,
            registered if info.error or info.replaced else escape(registered),
        )
    console.print(table)


def types(
    kind: Annotated[
        str | None,
        typer.Argument(
            help="Registry: MODELS, TRANSFORMS, DATASETS, HOOKS, OPTIMIZERS, SCHEDULERS or METRICS."
        ),
    ] = None,
    name: Annotated[
        str | None, typer.Argument(help="One type, to show its arguments in full.")
    ] = None,
) -> None:
    """List registered types with their constructor arguments (= config keys) and defaults."""
    from detcli.registry import REGISTRIES

    load_plugins_reporting_failures()
    registries = [REGISTRIES[kind]] if kind else list(REGISTRIES)
    if name is not None:
        _one_type(registries[0], name)
        return
    for registry in registries:
        table = Table(title=f"{registry.kind} ({len(registry)})", title_justify="left")
        table.add_column("type", style="bold cyan", no_wrap=True)
        table.add_column("from", style="dim")
        table.add_column("arguments (config keys)", overflow="fold")
        for entry in registry:
            sig = registry.signature(entry.name)
            args = ", ".join(_argument_text(a) for a in sig.arguments.values())
            if sig.accepts_any:
                args += (", " if args else "") + "**kwargs"
            table.add_row(escape(entry.name), escape(entry.source), escape(args))
        console.print(table)


def _one_type(registry: Registry, name: str) -> None:
    entry = registry.entry(name)
    sig = registry.signature(name)
    doc = inspect.getdoc(entry.obj) or ""
    console.print(
        f"[bold cyan]{escape(name)}[/] ({registry.kind}, from {escape(entry.source)}: "
        f"{escape(entry.qualname)})"
    )
    if doc:
        console.print(escape(doc.split("\n\n")[0]))
    table = Table(show_header=True)
    table.add_column("argument", style="bold")
    table.add_column("type")
    table.add_column("default")
    from detcli.config.typecheck import describe

    for arg in sig.arguments.values():
        default = "[red]required[/]" if arg.required else escape(repr(arg.default))
        table.add_row(escape(arg.name), escape(describe(arg.annotation)), default)
    console.print(table)


def _argument_text(arg: Argument) -> str:
    return arg.name if arg.required else f"{arg.name}={arg.default!r}"


def register(app: typer.Typer) -> None:
    """Add this module's commands to the app."""
    app.command("plugins")(plugins)
    app.command("types")(types)

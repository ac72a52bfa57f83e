"""The Typer application: global options and the command groups."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import typer

from detcli import __version__
from detcli.cli import (
    config_cmds,
    dataset_cmds,
    demo_cmds,
    eval_cmds,
    export_cmds,
    registry_cmds,
    train_cmds,
)


@dataclass
class _State:
    debug: bool = False


state = _State()

app = typer.Typer(
    name="detcli",
    help="Train, evaluate and inspect object detectors; every experiment is a YAML config.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"detcli {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show full tracebacks for errors (also DETCLI_DEBUG=1).")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    state.debug = debug


config_cmds.register(app)
registry_cmds.register(app)
train_cmds.register(app)
eval_cmds.register(app)
demo_cmds.register(app)
export_cmds.register(app)
app.add_typer(dataset_cmds.app, name="dataset")

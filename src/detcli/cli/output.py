"""Console output shared by the commands: errors in one red block, plugin warnings."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape

from detcli.errors import DetcliError

if TYPE_CHECKING:
    from detcli.plugins import PluginInfo

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def print_error(exc: BaseException) -> None:
    """A user error as one red block on stderr (no traceback: the message says what to do)."""
    # Not a boxed panel: the message names files, and wrapped paths cannot be copied.
    err_console.print(f"[bold red]error:[/] [red]{escape(str(exc))}[/]", soft_wrap=True)


def load_plugins_reporting_failures() -> list[PluginInfo]:
    """Load detcli's and installed plugins' components; warn about plugins that failed."""
    from detcli.plugins import failed_plugins, load_plugins, replacing_plugins

    plugins = load_plugins()
    for plugin in replacing_plugins():
        err_console.print(
            f"[yellow]warning:[/] plugin [bold]{escape(plugin.name)}[/] replaces "
            f"{escape(', '.join(plugin.replaced))}: configs naming these types get the plugin's.",
            soft_wrap=True,
        )
    for plugin in failed_plugins():
        err_console.print(
            f"[yellow]warning:[/] plugin [bold]{escape(plugin.name)}[/] "
            f"({escape(plugin.distribution or '?')} {escape(plugin.version or '')}) failed to load "
            f"and was skipped: {escape(plugin.error or '')}",
            soft_wrap=True,
        )
    return plugins


def output_file(path: Path, option: str) -> Path:
    """`path` where a command will write a file: refused now, not after the work, if it cannot."""
    if path.is_dir():
        raise DetcliError(f"{option} {path} is a folder; give a file path (e.g. {path}/out.json).")
    _creatable(path.parent, option, path)
    return path


def output_dir(path: Path, option: str) -> Path:
    """`path` where a command will write files: created now, refused now if it cannot be."""
    if path.exists() and not path.is_dir():
        raise DetcliError(f"{option} {path} is a file; give a folder (it is created if needed).")
    _creatable(path, option, path)
    return path


def _creatable(folder: Path, option: str, path: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DetcliError(
            f"{option} {path}: cannot create {exc.filename or folder} "
            f"({exc.strerror or exc}); choose another path."
        ) from None
    if not os.access(folder, os.W_OK):
        raise DetcliError(f"{option} {path}: the folder {folder} is not writable.")

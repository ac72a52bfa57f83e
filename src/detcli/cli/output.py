"""Console output shared by the commands: errors in one red block, plugin warnings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape

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

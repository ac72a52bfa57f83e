"""The `detcli` command line: a thin shell over library functions.

Modules here import torch (and anything heavy) only inside the commands that need it, so
`detcli --help` and `detcli print-config` answer in a fraction of a second.
"""

from __future__ import annotations

import os
import sys

from detcli.errors import DetcliError


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `detcli` console script and `python -m detcli`."""
    from detcli.cli.app import app, state
    from detcli.cli.output import print_error

    try:
        app(args=argv, prog_name="detcli")
    except DetcliError as exc:
        if state.debug or os.environ.get("DETCLI_DEBUG"):
            raise
        print_error(exc)
        sys.exit(exc.exit_code)

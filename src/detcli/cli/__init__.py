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
    except OSError as exc:  # an output path that is a file, a folder, read-only or full
        if state.debug or os.environ.get("DETCLI_DEBUG"):
            raise
        print_error(file_error(exc))
        sys.exit(2)


def file_error(exc: OSError) -> DetcliError:
    """A file-system error as a user error naming the path and what to do."""
    path = exc.filename or "a file"
    what = {
        17: "exists and is a file, where a folder is needed",
        20: "lies under something that is a file, not a folder",
        21: "is a folder, where a file is needed",
    }.get(exc.errno or 0, exc.strerror or str(exc))
    return DetcliError(f"{path}: {what}. Choose another path (e.g. --out) and run again.")

"""Where a run writes what it says: the console, `train.log` (the same lines) and `log.jsonl`.

Only rank 0 writes; the other ranks get a RunLog that discards everything.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape

from detcli.errors import TrainingError

_LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}


class RunLog:
    """Console lines (rich, plain when not a terminal) mirrored to files in the work dir."""

    def __init__(
        self,
        work_dir: Path | None,
        *,
        enabled: bool = True,
        console: Console | None = None,
        level: str = "INFO",
    ):
        self.enabled = enabled
        # `log_level` quiets the console only: train.log keeps every line (nothing is lost).
        self._rank = _LEVELS.get(level.upper(), _LEVELS["INFO"])
        self.console = console or Console(highlight=False)
        self._text: TextIO | None = None
        self._json: TextIO | None = None
        if enabled and work_dir is not None:
            self._text = open(work_dir / "train.log", "a", encoding="utf-8")  # noqa: SIM115
            self._json = open(work_dir / "log.jsonl", "a", encoding="utf-8")  # noqa: SIM115

    @property
    def is_terminal(self) -> bool:
        return self.enabled and self.console.is_terminal

    def info(self, text: str, style: str | None = None) -> None:
        """One line to the console and `train.log`."""
        if not self.enabled:
            return
        if self._rank <= _LEVELS["INFO"]:
            self.console.print(escape(text), style=style, soft_wrap=True)
        self._write(self._text, text + "\n")

    def warning(self, text: str) -> None:
        """A line marked as a warning."""
        if not self.enabled:
            return
        if self._rank <= _LEVELS["WARNING"]:
            self.console.print(f"[yellow]warning:[/] {escape(text)}", soft_wrap=True)
        self._write(self._text, f"warning: {text}\n")

    def record(self, data: dict[str, Any]) -> None:
        """One JSON object per line in `log.jsonl` (NaN and infinities become null)."""
        if self._json is None:
            return
        clean = {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in data.items()
        }
        self._write(self._json, json.dumps(clean) + "\n")

    def _write(self, file: TextIO | None, text: str) -> None:
        """Append to a log file; a full disk is one clear error (logs so far stay)."""
        if file is None:
            return
        try:
            file.write(text)
            file.flush()
        except OSError as exc:
            name = Path(file.name)
            with contextlib.suppress(OSError):
                self.close()  # no further writes to a failing disk
            free = shutil.disk_usage(name.parent).free / 2**20
            raise TrainingError(
                f"Could not write the log {name}: {exc.strerror or exc} ({free:.0f} MiB free on "
                "that disk). Free disk space, then continue with --resume auto."
            ) from None

    def close(self) -> None:
        """Close the files (the console stays usable)."""
        for f in (self._text, self._json):
            if f is not None:
                f.close()
        self._text = self._json = None

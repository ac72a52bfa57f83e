"""Reading a command's CONFIG argument: the merged config and its run settings, checked once
with every value's origin so a problem names the file and line that set it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from detcli.config import ConfigDict
    from detcli.config.settings import RunSettings


def load_run_config(config: Path, sets: list[str] | None) -> tuple[ConfigDict, RunSettings]:
    """(merged config, its run settings); ConfigError naming files and keys when they clash."""
    from detcli.config import resolve_config
    from detcli.config.settings import read_run_settings

    resolved = resolve_config(config, sets or [])
    return resolved.cfg, read_run_settings(resolved.cfg, resolved.origins)

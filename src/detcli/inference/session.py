"""Small pieces shared by `evaluate` and `predict`: reading the config argument."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from detcli.config import ConfigDict, load_config
from detcli.errors import ConfigError


def as_config(cfg: Any, overrides: list[str] | None = None) -> ConfigDict:
    """A private copy of `cfg` (a ConfigDict/mapping, or a config file path + overrides)."""
    if isinstance(cfg, (str, Path)):
        return load_config(cfg, overrides or [])
    if not isinstance(cfg, dict):
        raise ConfigError(
            f"expected a config (ConfigDict, mapping or file path), got {type(cfg).__name__}."
        )
    if overrides:
        raise ConfigError("overrides apply to a config file path; edit the ConfigDict instead.")
    return ConfigDict(copy.deepcopy(dict(cfg)))

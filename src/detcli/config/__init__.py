"""The config system: YAML with `_base_`, `_delete_`, `--set` overrides and `${...}` references.

Nothing here imports torch: `detcli print-config` must answer in a fraction of a second.
"""

from detcli.config.config_dict import ConfigDict
from detcli.config.loader import ResolvedConfig, load_config, resolve_config
from detcli.config.origins import ConfigPath, Origin, format_path
from detcli.config.render import render_config

__all__ = [
    "ConfigDict",
    "ConfigPath",
    "Origin",
    "ResolvedConfig",
    "format_path",
    "load_config",
    "render_config",
    "resolve_config",
]

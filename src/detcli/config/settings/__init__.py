"""Run settings read once at the config edge, whichever MMDetection spelling (2.x or 3.x).

Nothing here imports torch. See `run.py` for the whole and one module per section.
"""

from detcli.config.settings.environment import EnvSettings
from detcli.config.settings.evaluation import EvalSettings
from detcli.config.settings.hooks import HookSettings
from detcli.config.settings.loaders import LoaderSettings
from detcli.config.settings.loop import LoopSettings
from detcli.config.settings.optim import OptimSettings
from detcli.config.settings.reader import Finding
from detcli.config.settings.run import (
    KNOWN_TOP_LEVEL_KEYS,
    NO_EFFECT,
    RunSettings,
    collect_run_settings,
    read_run_settings,
    spelling_of,
)
from detcli.config.settings.schedule import ScheduleSettings

__all__ = [
    "KNOWN_TOP_LEVEL_KEYS",
    "NO_EFFECT",
    "EnvSettings",
    "EvalSettings",
    "Finding",
    "HookSettings",
    "LoaderSettings",
    "LoopSettings",
    "OptimSettings",
    "RunSettings",
    "ScheduleSettings",
    "collect_run_settings",
    "read_run_settings",
    "spelling_of",
]

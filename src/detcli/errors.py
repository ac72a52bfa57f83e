"""Errors a user can cause. The CLI prints them as one block and exits 2, without a traceback."""

from __future__ import annotations


class DetcliError(Exception):
    """Base of every error caused by user input (config, data, CLI, checkpoint, plugins)."""

    exit_code = 2


class ConfigError(DetcliError):
    """A config file or `--set` override that cannot be loaded, merged or resolved."""


class RegistryError(DetcliError):
    """A registry lookup or registration that cannot succeed (unknown type, clashing names)."""


class PluginError(DetcliError):
    """A plugin that cannot be used as installed (e.g. two plugins claim one type name)."""


class DataError(DetcliError):
    """A dataset, annotation file or image that cannot be used as configured."""


class ModelError(DetcliError):
    """A model config that cannot be built, or weights that do not fit it."""


class CheckpointError(DetcliError):
    """A checkpoint that is missing, corrupt, or made for a different model or config."""


class TrainingError(DetcliError):
    """A run that cannot start or go on (unwritable work dir, non-finite loss, ...)."""

"""detcli-plugin-example: one backbone, one transform, one loss and one hook for detcli.

detcli finds this module through the `detcli.plugins` entry point in pyproject.toml and
calls `detcli_register` once per process; after that, configs name the classes by `type:`.
Importing the module registers nothing by itself, so it is safe to import in tests.
"""

from __future__ import annotations

from detcli.plugins import hookimpl
from detcli.registry import Registries

from .backbone import TinyConvNet
from .cutout import CutOut
from .hook import UpdateRatioHook
from .loss import BalancedL1Loss

__all__ = ["BalancedL1Loss", "CutOut", "TinyConvNet", "UpdateRatioHook", "detcli_register"]


@hookimpl
def detcli_register(registries: Registries) -> None:
    """Add this plugin's components to detcli's registries, under their class names."""
    registries.MODELS.register(TinyConvNet)
    registries.MODELS.register(BalancedL1Loss)  # losses are MODELS, as in mmdet
    registries.TRANSFORMS.register(CutOut)
    registries.HOOKS.register(UpdateRatioHook)

"""Necks (MODELS registry): FPN and HRFPN."""

from detcli.models.necks.fpn import FPN
from detcli.models.necks.hrfpn import HRFPN

__all__ = ["FPN", "HRFPN"]

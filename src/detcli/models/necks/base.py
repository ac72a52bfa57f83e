"""What FPN-style necks share: `num_outs` levels of `out_channels`, built once `in_channels` is
known (given, or wired from the backbone's feature maps)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from detcli.errors import ModelError
from detcli.models.shapes import UNWIRED, FeatureMaps, Wiring


class PyramidNeck(nn.Module):
    """Base of detcli's necks: a subclass builds its layers in `_build(in_channels)` and says
    the strides of its outputs in `output_strides(in_strides)`."""

    out_channels: int
    num_outs: int
    in_channels: list[int] | None

    def build_when_known(self, in_channels: Sequence[int] | None) -> None:
        """Build the layers now if `in_channels` is given; else when the detector wires it."""
        self.in_channels = None
        if in_channels is not None:
            self._build(list(in_channels))

    def wire(self, inputs: FeatureMaps, wiring: Wiring) -> FeatureMaps:
        """Take `in_channels` from the backbone's maps (or check it); say what it outputs."""
        why = f"{inputs.source} gives feature maps with {list(inputs.channels)} channels"
        in_channels = wiring.agree("in_channels", self.in_channels, list(inputs.channels), why)
        if self.in_channels is None:
            self._build(in_channels)
        strides = tuple(self.output_strides(inputs.strides))
        name = f"the {type(self).__name__} neck"
        return FeatureMaps((self.out_channels,) * self.num_outs, strides, name)

    def wired_in_channels(self) -> list[int]:
        """`in_channels`, or a clear error when the neck runs before it was wired."""
        if self.in_channels is None:
            raise ModelError(UNWIRED.format(part=type(self).__name__))
        return self.in_channels

    def _build(self, in_channels: list[int]) -> None:
        raise NotImplementedError

    def output_strides(self, in_strides: Sequence[int]) -> list[int]:
        """Strides of the outputs, given the strides of the backbone levels fed in."""
        raise NotImplementedError

"""TinyConvNet: a small plain CNN backbone (conv-BN-ReLU stages) that learns from scratch.

It extends detcli's `Backbone`: after `__init__`, `out_channels` and `strides` list the
channels and the stride (input pixels per feature pixel) of each feature map `forward`
returns, finest first, so the neck and heads are wired from them (and `detcli check` finds a
mismatch without running anything); `stage_modules()` says what `frozen_stages` freezes, and
`Backbone.train()` keeps frozen stages and, with `norm_eval`, BatchNorms in eval mode.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from detcli.errors import ModelError
from detcli.models import Backbone


def conv_bn_relu(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    """3x3 conv (no bias: BN has one) -> BatchNorm -> ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class TinyConvNet(Backbone):
    """A stride-4 stem, then one stage per width; each stage after the first halves the size.

    Stage i outputs `widths[i]` channels at stride 4 * 2**i, like a ResNet's stage i.
    `out_indices` picks the stages returned (default: all); `frozen_stages` k freezes the
    stem and the first k stages (-1: nothing frozen); `norm_eval` keeps every BatchNorm in
    eval mode.
    """

    def __init__(
        self,
        widths: Sequence[int] = (32, 64, 128, 256),
        stem_channels: int = 16,
        blocks_per_stage: int = 1,
        in_channels: int = 3,
        out_indices: Sequence[int] | None = None,
        frozen_stages: int = -1,
        norm_eval: bool = False,
    ):
        super().__init__()
        if out_indices is None:
            out_indices = range(len(widths))
        _check_args(widths, blocks_per_stage, out_indices, frozen_stages)
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.stem = nn.Sequential(
            conv_bn_relu(in_channels, stem_channels, stride=2),
            conv_bn_relu(stem_channels, stem_channels, stride=2),
        )
        self.stages = nn.ModuleList()
        previous = stem_channels
        for i, width in enumerate(widths):
            blocks = [conv_bn_relu(previous, width, stride=1 if i == 0 else 2)]
            blocks += [conv_bn_relu(width, width) for _ in range(blocks_per_stage - 1)]
            self.stages.append(nn.Sequential(*blocks))
            previous = width
        # What the neck is wired from: one entry per returned map.
        self.out_channels: list[int] = [int(widths[i]) for i in self.out_indices]
        self.strides: list[int] = [4 * 2**i for i in self.out_indices]
        self._init_weights()
        self.freeze_stages()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def stage_modules(self) -> list[list[nn.Module]]:
        """The stem, then each stage (what `frozen_stages` counts)."""
        return [[self.stem], *([stage] for stage in self.stages)]

    def forward(self, x: Tensor) -> list[Tensor]:
        """Feature maps of the stages in `out_indices`, finest first."""
        x = self.stem(x)
        outs = []
        for i, stage in enumerate(self.stages[: max(self.out_indices) + 1]):
            x = stage(x)
            if i in self.out_indices:
                outs.append(x)
        return outs


def _check_args(
    widths: Sequence[int], blocks: int, out_indices: Sequence[int], frozen_stages: int
) -> None:
    where = "model.backbone (TinyConvNet)"
    if not widths or any(int(w) < 1 for w in widths):
        raise ModelError(f"{where}: widths must be a non-empty list of positive channel counts.")
    if blocks < 1:
        raise ModelError(f"{where}: blocks_per_stage must be at least 1, got {blocks}.")
    n = len(widths)
    if (
        not out_indices
        or list(out_indices) != sorted(set(out_indices))
        or not (out_indices[0] >= 0 and out_indices[-1] < n)
    ):
        raise ModelError(
            f"{where}: out_indices {list(out_indices)} must be increasing stage numbers from 0 "
            f"to {n - 1} (one per entry of widths {list(widths)})."
        )
    if not -1 <= frozen_stages <= n:
        raise ModelError(
            f"{where}: frozen_stages is {frozen_stages}; use -1 (nothing frozen), 0 (the stem) "
            f"up to {n} (the stem and all {n} stages)."
        )

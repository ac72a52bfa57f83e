"""What every backbone shares: it describes its outputs, freezes stages, keeps norms in eval.

A subclass sets `out_channels` and `strides` (one entry per returned feature map, finest
first), `frozen_stages` and `norm_eval`, and says which modules stage k is made of
(`stage_modules()`); `train()` then behaves as mmdet's backbones do, and necks and heads are
wired from `feature_maps` instead of from numbers typed twice.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from detcli.models.shapes import FeatureMaps


class Backbone(nn.Module):
    """Base of detcli's backbones (and a plugin's): output metadata, frozen stages, norm_eval.

    `frozen_stages` k freezes stages 0..k of `stage_modules()` (stage 0 is the stem): their
    parameters stop learning and they stay in eval mode. `norm_eval` keeps every BatchNorm in
    eval mode while training (running statistics of pretrained weights kept as they are).
    """

    out_channels: list[int]
    strides: list[int]
    frozen_stages: int = -1
    norm_eval: bool = False

    def __init__(self, init_cfg: dict[str, Any] | list[dict[str, Any]] | None = None):
        super().__init__()
        self.init_cfg = init_cfg

    def init_weights(self) -> None:
        """Apply `init_cfg` (pretrained weights, or fills) to this backbone and its parts."""
        from detcli.models.weight_init import init_weights

        init_weights(self, getattr(self, "where", "model.backbone"))

    def stage_modules(self) -> list[list[nn.Module]]:
        """The modules of each stage, stem first (what `frozen_stages` counts)."""
        raise NotImplementedError(f"{type(self).__name__} does not say what its stages are.")

    @property
    def feature_maps(self) -> FeatureMaps:
        """Channels and strides of the maps `forward` returns, for wiring the next part."""
        return FeatureMaps(tuple(self.out_channels), tuple(self.strides), self.describe())

    def describe(self) -> str:
        """How messages name this backbone: "the ResNet backbone"."""
        return f"the {type(self).__name__} backbone"

    def freeze_stages(self) -> None:
        """Stages up to `frozen_stages`: eval mode, no gradients."""
        if self.frozen_stages < 0:
            return
        for group in self.stage_modules()[: self.frozen_stages + 1]:
            for module in group:
                module.eval()
                for p in module.parameters():
                    p.requires_grad = False

    def train(self, mode: bool = True) -> Backbone:
        """Train mode, except frozen stages (always eval) and, with norm_eval, every BatchNorm."""
        super().train(mode)
        self.freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self

    def forward(self, x: Tensor) -> list[Tensor]:  # pragma: no cover - subclasses define it
        raise NotImplementedError

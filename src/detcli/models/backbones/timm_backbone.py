"""TimmBackbone: any timm model that can return feature maps, by name."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from detcli.models.backbones.timm_features import TimmFeatures
from detcli.registry import MODELS


@MODELS.register()
class TimmBackbone(TimmFeatures):
    """`timm.create_model(model_name, features_only=True)`; out_indices are timm's feature levels.

    frozen_stages N freezes every module up to the one producing timm feature level N
    (for ResNets level 0 is the stem, as in mmdet). `model_kwargs` go to `timm.create_model`.
    Transformers work at any (padded) image size: Swin-style models are built with
    `strict_img_size: false` and their channels-last maps returned as NCHW; ViTs get
    `dynamic_img_size: true` and give one stride (16) at every level, so their neck and
    anchors must use that stride (`detcli check` says which values).
    """

    def __init__(
        self,
        model_name: str,
        out_indices: Sequence[int] | None = None,
        frozen_stages: int = -1,
        norm_cfg: dict[str, Any] | None = None,
        norm_eval: bool = False,
        with_cp: bool = False,
        init_cfg: dict[str, Any] | None = None,
        model_kwargs: dict[str, Any] | None = None,
    ):
        super().__init__(
            model_name,
            out_indices,
            frozen_stages=frozen_stages,
            norm_cfg=norm_cfg,
            norm_eval=norm_eval,
            init_cfg=init_cfg,
            with_cp=with_cp,
            create_kwargs=model_kwargs,
        )

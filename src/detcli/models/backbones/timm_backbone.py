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

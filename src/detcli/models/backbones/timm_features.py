"""What every detcli backbone shares: a timm `features_only` network plus mmdet's training knobs.

`frozen_stages`, `norm_eval`, `norm_cfg.requires_grad` and `init_cfg` behave as in mmdet, for
any timm model: stage k is the modules up to timm feature level k (level 0 is the stem).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import timm
from timm.models import FeatureInfo
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from detcli.errors import ModelError
from detcli.models.backbones.base import Backbone
from detcli.models.init_cfg import read_init_cfg

BACKBONE_NORMS = ("BN", "SyncBN")


class TimmFeatures(Backbone):
    """A timm feature extractor with stage freezing, BN eval mode and pretrained loading."""

    def __init__(
        self,
        timm_name: str,
        timm_out_indices: Sequence[int] | None,
        frozen_stages: int = -1,
        norm_cfg: Mapping[str, Any] | None = None,
        norm_eval: bool = False,
        init_cfg: Mapping[str, Any] | None = None,
        with_cp: bool = False,
        create_kwargs: Mapping[str, Any] | None = None,
        where: str = "model.backbone",
    ):
        super().__init__(dict(init_cfg) if init_cfg is not None else None)
        self.where = where
        self.timm_name = timm_name
        self.create_kwargs = dict(create_kwargs or {})
        if timm_out_indices is not None:
            self.create_kwargs["out_indices"] = tuple(timm_out_indices)
        self.body: nn.Module = self._create()
        if _fixed_input_size(self.body):
            # Transformers (Swin, ViT) are built for one image size; detection images vary.
            self.create_kwargs = {**_any_size_kwargs(self.body), **self.create_kwargs}
            self.body = self._create()
        # Swin-style models give channels-last maps; necks and heads take NCHW.
        self.channels_last = str(getattr(self.body, "output_fmt", "NCHW")).endswith("NHWC")
        feature_info = _feature_info(self.body)
        self.out_channels: list[int] = list(feature_info.channels())
        self.strides: list[int] = list(feature_info.reduction())
        self.norm_eval = norm_eval
        self.frozen_stages = frozen_stages
        read_init_cfg(self.init_cfg, f"{where}.init_cfg")  # a mistake fails here, not later
        self._apply_norm_cfg(dict(norm_cfg) if norm_cfg is not None else {"type": "BN"})
        if with_cp:
            try:
                # A method of timm's feature nets; nn.Module.__getattr__ would type it a Tensor.
                enable = cast("Callable[[bool], None]", self.body.set_grad_checkpointing)
                enable(True)
            except (AssertionError, AttributeError, NotImplementedError):
                raise ModelError(
                    f"{where}: timm's {timm_name!r} has no gradient checkpointing; "
                    "set with_cp: false."
                ) from None
        self._stages = self._find_stages()
        if frozen_stages >= len(self._stages):
            raise ModelError(
                f"{where}.frozen_stages is {frozen_stages}, but {timm_name} has only "
                f"{len(self._stages) - 1} stages after the stem; use -1 (none) to "
                f"{len(self._stages) - 1}."
            )
        self.freeze_stages()

    def _create(self) -> nn.Module:
        try:
            return timm.create_model(
                self.timm_name, features_only=True, pretrained=False, **self.create_kwargs
            )
        except (RuntimeError, TypeError, ValueError, IndexError, AssertionError) as exc:
            raise ModelError(
                f"{self.where}: timm cannot build {self.timm_name!r} as a feature extractor "
                f"with {self.create_kwargs}: {exc}"
            ) from None

    # -- structure ----------------------------------------------------------------------------

    def stage_modules(self) -> list[list[nn.Module]]:
        """The body's modules grouped by the timm feature level they end (stem first)."""
        return self._stages

    def describe(self) -> str:
        """ "the ResNet backbone (resnet50)": the class and the timm network it builds."""
        return f"the {type(self).__name__} backbone ({self.timm_name})"

    def _find_stages(self) -> list[list[nn.Module]]:
        """The body's modules grouped by the timm feature level they end (stem first).

        Containers holding a feature level's module (`blocks` around `blocks.0`) are opened,
        so each group holds exactly the modules that run before that level's output.
        """
        names = dict(self.body.named_modules())
        ends = []
        for info in _feature_info(self.body).info:
            for candidate in (info["module"], info["module"].replace(".", "_")):
                if candidate in names:
                    ends.append(candidate)
                    break
        groups: list[list[nn.Module]] = [[]]
        for name, module in _units(self.body, "", ends):
            groups[-1].append(module)
            if name in ends:
                groups.append([])
        if not groups[-1]:
            groups.pop()
        if len(groups) == 1 and self.frozen_stages >= 0:
            raise ModelError(
                f"{self.where}: cannot tell the stages of timm's {self.timm_name!r} apart, so "
                "frozen_stages cannot be honoured; set frozen_stages: -1."
            )
        return groups

    def _apply_norm_cfg(self, norm_cfg: dict[str, Any]) -> None:
        kind = norm_cfg.get("type", "BN")
        unknown = set(norm_cfg) - {"type", "requires_grad", "eps", "momentum"}
        if kind not in BACKBONE_NORMS or unknown:
            raise ModelError(
                f"{self.where}.norm_cfg {norm_cfg!r} is not supported: backbones take "
                f"type {' or '.join(BACKBONE_NORMS)} with optional requires_grad, eps, momentum "
                "(pretrained weights are BatchNorm weights)."
            )
        if kind == "SyncBN":
            # torch leaves convert_sync_batchnorm unannotated.
            self.body = nn.SyncBatchNorm.convert_sync_batchnorm(self.body)  # type: ignore[no-untyped-call]
        for m in self.body.modules():
            if isinstance(m, _BatchNorm):
                if "eps" in norm_cfg:
                    m.eps = float(norm_cfg["eps"])
                if "momentum" in norm_cfg:
                    m.momentum = float(norm_cfg["momentum"])
                for p in m.parameters():
                    p.requires_grad = bool(norm_cfg.get("requires_grad", True))

    def forward(self, x: Tensor) -> list[Tensor]:
        """Feature maps for the configured out_indices, finest first."""
        features = list(self.body(x))
        if self.channels_last:
            features = [f.permute(0, 3, 1, 2).contiguous() for f in features]
        return features


def _feature_info(body: nn.Module) -> FeatureInfo:
    """The levels a timm `features_only` net outputs (its `feature_info`)."""
    info = body.feature_info
    # Every timm feature net sets a FeatureInfo; the check narrows nn.Module's attribute type.
    assert isinstance(info, FeatureInfo), f"timm feature net without FeatureInfo: {type(body)}"
    return info


def _fixed_input_size(body: nn.Module) -> bool:
    """True when a patch embedding refuses images of another size than the model's own."""
    modules = list(body.modules())
    strict = any(getattr(m, "strict_img_size", False) for m in modules)
    return strict and not any(getattr(m, "dynamic_img_size", False) for m in modules)


def _any_size_kwargs(body: nn.Module) -> dict[str, Any]:
    """timm's switch for any input size: ViTs take `dynamic_img_size` (position embeddings
    resampled), Swin-style models `strict_img_size: false` (windows padded)."""
    if any(hasattr(m, "dynamic_img_size") for m in body.modules()):
        return {"dynamic_img_size": True}
    return {"strict_img_size": False}


def _units(module: nn.Module, prefix: str, ends: list[str]) -> list[tuple[str, nn.Module]]:
    """Children in order, opening those that contain a feature level's module."""
    out: list[tuple[str, nn.Module]] = []
    for name, child in module.named_children():
        full = prefix + name
        if any(end.startswith(full + ".") for end in ends):
            out += _units(child, full + ".", ends)
        else:
            out.append((full, child))
    return out

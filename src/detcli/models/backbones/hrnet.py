"""HRNet backbone (timm `hrnet_wN`), chosen by mmdet's `extra` stage spec or a short `arch` name.

Detection wants the four raw branches of the last stage (strides 4-32, e.g. 32/64/128/256
channels for W32), i.e. timm's `feature_location=''`, not its widened classification features.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from timm.models import hrnet as timm_hrnet
from torch import nn

from detcli.errors import ModelError
from detcli.models.backbones.timm_features import TimmFeatures
from detcli.registry import MODELS

STAGE_KEYS = ("num_modules", "num_branches", "block", "num_blocks", "num_channels")


def _spec(stage: Mapping[str, Any]) -> dict[str, Any]:
    """One stage of an HRNet spec, in mmdet's spelling, comparable across mmdet and timm."""
    block = stage.get("block", stage.get("block_type"))
    return {
        "num_modules": stage.get("num_modules"),
        "num_branches": stage.get("num_branches"),
        "block": block,
        "num_blocks": list(stage.get("num_blocks", ())),
        "num_channels": list(stage.get("num_channels", ())),
    }


def hrnet_variants() -> dict[str, dict[str, dict[str, Any]]]:
    """timm HRNet name -> its stage spec (mmdet spelling)."""
    # timm's configs mix `stem_width` (an int) with the stage dicts, so entries read as `object`.
    return {
        name: {
            s: _spec(cast(Mapping[str, Any], cfg[s]))
            for s in ("stage1", "stage2", "stage3", "stage4")
        }
        for name, cfg in timm_hrnet.cfg_cls.items()
    }


def hrnet_name(extra: Mapping[str, Any] | None, arch: str | None) -> str:
    """The timm HRNet matching an mmdet `extra` spec, or named by `arch` (`w32` / `hrnet_w32`)."""
    variants = hrnet_variants()
    if (extra is None) == (arch is None):
        raise ModelError(
            "HRNet: set exactly one of `extra` (mmdet's stage spec) or `arch` "
            f"(one of {', '.join(n.removeprefix('hrnet_') for n in variants)})."
        )
    if arch is not None:
        name = arch if arch.startswith("hrnet_") else f"hrnet_{arch}"
        if name not in variants:
            raise ModelError(
                f"HRNet: arch {arch!r} is unknown; use one of "
                f"{', '.join(n.removeprefix('hrnet_') for n in variants)}."
            )
        return name
    assert extra is not None
    wanted = {}
    for stage in ("stage1", "stage2", "stage3", "stage4"):
        if not isinstance(extra.get(stage), Mapping):
            raise ModelError(f"HRNet: extra.{stage} is missing; it needs {', '.join(STAGE_KEYS)}.")
        wanted[stage] = _spec(extra[stage])
    for name, spec in variants.items():
        if spec == wanted:
            return name
    width = wanted["stage2"]["num_channels"][:1]
    near = next((n for n, s in variants.items() if s["stage2"]["num_channels"][:1] == width), None)
    hint = ""
    if near is not None:
        diffs = [
            f"extra.{st}.{k} is {wanted[st][k]} (timm {near}: {variants[near][st][k]})"
            for st in wanted
            for k in STAGE_KEYS
            if wanted[st][k] != variants[near][st][k]
        ]
        hint = f" Closest is {near}: {'; '.join(diffs[:4])}."
    raise ModelError(
        "HRNet: the `extra` stage spec matches no HRNet timm can build."
        f"{hint} Known widths: {', '.join(n.removeprefix('hrnet_') for n in variants)} "
        "(or set `arch: w32` instead of `extra`)."
    )


@MODELS.register()
class HRNet(TimmFeatures):
    """HRNet-W18/W32/W40/W48...: four parallel branches; out_indices pick them (0 = stride 4)."""

    def __init__(
        self,
        extra: dict[str, Any] | None = None,
        arch: str | None = None,
        in_channels: int = 3,
        out_indices: Sequence[int] = (0, 1, 2, 3),
        frozen_stages: int = -1,
        norm_cfg: dict[str, Any] | None = None,
        norm_eval: bool = False,
        with_cp: bool = False,
        init_cfg: dict[str, Any] | None = None,
    ):
        bad = [i for i in out_indices if not 0 <= i < 4]
        if bad or not out_indices:
            raise ModelError(f"HRNet: out_indices {list(out_indices)} must be branches 0 to 3.")
        super().__init__(
            hrnet_name(extra, arch),
            [i + 1 for i in out_indices],
            frozen_stages=frozen_stages,
            norm_cfg=norm_cfg,
            norm_eval=norm_eval,
            init_cfg=init_cfg,
            with_cp=with_cp,
            create_kwargs={"in_chans": in_channels, "feature_location": ""},
        )

    def stage_modules(self) -> list[list[nn.Module]]:
        """Stem, then stage 1 (layer1) and stages 2-4 with the transition that feeds each."""
        stages = [
            ["conv1", "bn1", "conv2", "bn2"],
            ["layer1"],
            ["transition1", "stage2"],
            ["transition2", "stage3"],
            ["transition3", "stage4"],
        ]
        return [[self.body.get_submodule(name) for name in stage] for stage in stages]

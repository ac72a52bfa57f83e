"""Pretrained backbone weights from `init_cfg.checkpoint`: a local file or a hub name.

Hub names are the spellings users already write elsewhere: `timm:resnext101_64x4d.tv_in1k`
(downloaded and cached by timm from the Hugging Face hub), `torchvision:resnet50` or
`torchvision:resnet50.IMAGENET1K_V2` (cached by torch.hub), or an http(s) URL. Local files may
use timm's or torchvision's parameter names (identical for ResNet/ResNeXt), a whole-detector
checkpoint (its `backbone.` keys are used) or the `state_dict`/`model` wrappers trainers write.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import timm
import torch
from torch import Tensor

from detcli.errors import ModelError

if TYPE_CHECKING:
    from detcli.models.backbones.timm_features import TimmFeatures

CLASSIFIER_PREFIXES = ("fc.", "head.", "classifier.", "head_drop.", "global_pool.")


@dataclass
class LoadReport:
    """What loading pretrained weights did: how many tensors, and which source keys went unused."""

    source: str
    loaded: int
    unused: list[str] = field(default_factory=list)  # e.g. the classifier a detector drops


def load_pretrained(
    backbone: TimmFeatures,
    checkpoint: str,
    prefix: str | None = None,
    where: str = "model.backbone.init_cfg",
) -> LoadReport:
    """Copy the weights named by `checkpoint` into `backbone.body`; ModelError if they do not fit.

    `prefix` keeps only the file's keys under it (e.g. `backbone.` of a detector checkpoint).
    """
    state = unwrap_state_dict(read_state_dict(checkpoint, where))
    if prefix:
        state = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        if not state:
            raise ModelError(f"{where}.prefix: no key of {checkpoint!r} starts with {prefix!r}.")
    elif any(k.startswith("backbone.") for k in state):  # a whole detector: keep its backbone
        state = {k[len("backbone.") :]: v for k, v in state.items() if k.startswith("backbone.")}
    return _load_into(backbone, state, checkpoint, where, allow_filter=True)


# MMDetection's `open-mmlab://NAME` weights with a twin that detcli downloads: the same
# architecture's ImageNet weights from torchvision or timm (not the same file, same recipe).
OPEN_MMLAB_TWINS = {
    "resnext50_32x4d": "torchvision:resnext50_32x4d.IMAGENET1K_V1",
    "resnext101_64x4d": "torchvision:resnext101_64x4d.IMAGENET1K_V1",
    "resnext101_32x4d": "timm:resnext101_32x4d.gluon_in1k",
    "msra/hrnetv2_w18": "timm:hrnet_w18.ms_in1k",
    "msra/hrnetv2_w32": "timm:hrnet_w32.ms_in1k",
    "msra/hrnetv2_w40": "timm:hrnet_w40.ms_in1k",
}
# The files of mmcv's model zoo (mmcv/model_zoo/open_mmlab.json) with no torchvision/timm twin.
OPEN_MMLAB_ZOO = "https://download.openmmlab.com/pretrain/third_party/"
OPEN_MMLAB_FILES = {
    "resnet50_caffe": "resnet50_caffe-788b5fa3.pth",
    "resnet101_caffe": "resnet101_caffe-3ad79236.pth",
    "detectron/resnet50_caffe": "resnet50_caffe-788b5fa3.pth",
    "detectron/resnet101_caffe": "resnet101_caffe-3ad79236.pth",
    "contrib/resnet50_gn": "resnet50_gn_thangvubk-ad1730dd.pth",
    "detectron/resnet50_gn": "resnet50_gn-9186a21c.pth",
    "detectron/resnet101_gn": "resnet101_gn-cac0ab98.pth",
    "jhu/resnet50_gn_ws": "resnet50_gn_ws-15beedd8.pth",
}


def hub_name(checkpoint: str, where: str = "model.backbone.init_cfg") -> str:
    """MMDetection's `torchvision://NAME` and `open-mmlab://NAME` as detcli's hub names.

    `torchvision://resnet50` is torchvision's original weights (`IMAGENET1K_V1`, what mmcv
    loads). An `open-mmlab://` name without a twin is a ModelError naming the file to fetch.
    Other strings are returned unchanged.
    """
    scheme, sep, name = checkpoint.partition("://")
    if not sep or scheme not in ("torchvision", "open-mmlab", "openmmlab", "mmcls"):
        return checkpoint
    if scheme == "torchvision":
        return f"torchvision:{name}" if "." in name else f"torchvision:{name}.IMAGENET1K_V1"
    if name in OPEN_MMLAB_TWINS:
        return OPEN_MMLAB_TWINS[name]
    file = OPEN_MMLAB_FILES.get(name)
    fetch = (
        f"Download {OPEN_MMLAB_ZOO}{file}"
        if file
        else f"Download the file that mmcv's model zoo (mmcv/model_zoo/open_mmlab.json) lists "
        f"for {name!r}"
    )
    raise ModelError(
        f"{where}.checkpoint: {checkpoint!r} is one of mmcv's model-zoo names, which detcli "
        f"does not download and has no torchvision/timm twin for. {fetch} and "
        f"point {where}.checkpoint at it (e.g. --set {where}.checkpoint=/path/to/"
        f"{file or 'weights.pth'}), or use a hub name such as torchvision:resnet50 or "
        "timm:resnet50.a1_in1k, or init_cfg: null for random weights."
    )


def read_state_dict(checkpoint: str, where: str = "model.backbone.init_cfg") -> dict[str, Tensor]:
    """The raw state dict a checkpoint string names (downloading hub weights when possible)."""
    checkpoint = hub_name(checkpoint, where)
    if checkpoint.startswith("timm:"):
        return _timm_hub(checkpoint[len("timm:") :], where)
    if checkpoint.startswith("torchvision:"):
        return _torchvision_hub(checkpoint[len("torchvision:") :], where)
    if checkpoint.startswith(("http://", "https://")):
        return _download(checkpoint, checkpoint, where)
    return _local_file(Path(checkpoint).expanduser(), where)


def _local_file(path: Path, where: str) -> dict[str, Tensor]:
    if not path.is_file():
        raise ModelError(
            f"{where}.checkpoint: file {str(path)!r} does not exist. Point "
            f"{where}.checkpoint at a local .pth/.safetensors file, a hub name such as "
            "torchvision:resnet50 or timm:resnet50.a1_in1k, or set init_cfg: null."
        )
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return dict(load_file(str(path), device="cpu"))
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(
            f"{where}.checkpoint: {str(path)!r} is not a readable PyTorch/safetensors "
            f"checkpoint ({type(exc).__name__}: {exc})."
        ) from None
    if not isinstance(loaded, Mapping):
        raise ModelError(f"{where}.checkpoint: {str(path)!r} holds no state dict.")
    return dict(loaded)


def _timm_hub(name: str, where: str) -> dict[str, Tensor]:
    cfg = timm_pretrained_cfg(name, where)
    hub = f"https://huggingface.co/{cfg.hf_hub_id}" if cfg.hf_hub_id else cfg.url

    def no_download(reason: str) -> ModelError:
        return ModelError(
            f"{where}.checkpoint: could not download timm weights {name!r} ({reason}). On a "
            f"machine with internet, fetch {hub} (the model.safetensors or pytorch_model.bin "
            f"file), copy it here and set {where}.checkpoint to its path, e.g. "
            f"--set {where}.checkpoint=/path/to/model.safetensors."
        )

    # The Hugging Face client retries for about a minute before giving up; without a cached
    # copy, a quick look for the network fails fast instead.
    if cfg.hf_hub_id and not _hf_cached(cfg) and not _hub_reachable("huggingface.co"):
        raise no_download("no network: huggingface.co cannot be reached, nothing cached")
    try:
        model = timm.create_model(name, pretrained=True)
    except Exception as exc:
        raise no_download(f"{type(exc).__name__}: {str(exc)[:200]}; is there a network?") from None
    return {k: v.detach() for k, v in model.state_dict().items()}


def _hf_cached(cfg: Any) -> bool:
    """Whether the Hugging Face cache already holds the weights file (then no network is needed)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    repo = cfg.hf_hub_id.split("@")[0]
    files = [cfg.hf_hub_filename] if cfg.hf_hub_filename else []
    files += ["model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin"]
    return any(isinstance(try_to_load_from_cache(repo, f), str) for f in files)


def _hub_reachable(host: str, timeout: float = 5.0) -> bool:
    """Can `host`:443 be reached? (Behind a proxy or in offline mode, the client decides.)"""
    proxies = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "HF_HUB_OFFLINE")
    if any(os.environ.get(v) for v in proxies):
        return True
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def timm_pretrained_cfg(name: str, where: str = "model.backbone.init_cfg") -> Any:
    """timm's pretrained config for `arch.tag`; ModelError listing the known tags if none."""
    try:
        cfg = timm.models.get_pretrained_cfg(name)
    except RuntimeError:
        cfg = None
    if cfg is None:
        arch = name.split(".")[0]
        known = timm.list_pretrained(f"{arch}.*")
        raise ModelError(
            f"{where}.checkpoint: timm has no pretrained weights named {name!r}. "
            f"Known for {arch}: {', '.join(known[:12]) or 'none (is the architecture right?)'}."
        )
    return cfg


def _torchvision_hub(name: str, where: str) -> dict[str, Tensor]:
    import torchvision

    arch, _, tag = name.partition(".")
    try:
        enum = torchvision.models.get_model_weights(arch)
        weights = enum[tag or "DEFAULT"]
    except (ValueError, KeyError):
        raise ModelError(
            f"{where}.checkpoint: torchvision has no weights {name!r}; write "
            "torchvision:ARCH or torchvision:ARCH.TAG (e.g. torchvision:resnet50.IMAGENET1K_V2)."
        ) from None
    return _download(weights.url, f"torchvision:{name}", where)


def _download(url: str, label: str, where: str) -> dict[str, Tensor]:
    try:
        state = torch.hub.load_state_dict_from_url(
            url, map_location="cpu", progress=False, weights_only=True
        )
    except Exception as exc:
        cache = Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]
        raise ModelError(
            f"{where}.checkpoint: could not download {label!r} from {url} "
            f"({type(exc).__name__}: {str(exc)[:200]}; is there a network?). On a machine with "
            f"internet, fetch {url}, then either put it at {cache} (the torch.hub cache, used "
            f"next time) or set {where}.checkpoint to its path, e.g. "
            f"--set {where}.checkpoint=/path/to/{url.rsplit('/', 1)[-1]}."
        ) from None
    return dict(state)


def unwrap_state_dict(state: Mapping[str, Any]) -> dict[str, Tensor]:
    """The tensors of a trainer checkpoint (`state_dict` / `model` wrappers, `module.` prefixes)."""
    for key in ("state_dict", "model", "model_state"):
        if key in state and isinstance(state[key], Mapping):
            state = state[key]
            break
    return {k.removeprefix("module."): v for k, v in state.items() if isinstance(v, Tensor)}


def _load_into(
    backbone: TimmFeatures,
    state: dict[str, Tensor],
    source: str,
    where: str,
    allow_filter: bool,
) -> LoadReport:
    target = backbone.body.state_dict()
    matched: dict[str, Tensor] = {}
    used: set[str] = set()
    missing, wrong_shape = [], []
    for key, tensor in target.items():
        src = _source_key(key, state)
        if src is None:
            missing.append(key)
        elif state[src].shape != tensor.shape:
            wrong_shape.append(
                f"{key}: file {tuple(state[src].shape)} vs model {tuple(tensor.shape)}"
            )
        else:
            matched[key] = state[src]
            used.add(src)
    unused = [k for k in state if k not in used]
    dropped = _keys_features_only_drops(backbone)
    unexpected = [k for k in unused if k not in dropped and not k.startswith(CLASSIFIER_PREFIXES)]
    if (missing or wrong_shape or unexpected) and allow_filter:
        filtered = _timm_filter(backbone, state)
        if filtered is not None:
            return _load_into(backbone, filtered, source, where, allow_filter=False)
    if missing or wrong_shape or unexpected:
        raise ModelError(
            f"{where}.checkpoint: the weights in {source!r} do not fit the backbone "
            f"({backbone.timm_name}). {key_listing('missing from the file', missing)}"
            f"{key_listing('shape mismatch', wrong_shape)}"
            f"{key_listing('unexpected in the file', unexpected)}"
            "Point the checkpoint at weights made for this architecture (depth, groups, width)."
        )
    backbone.body.load_state_dict(matched, strict=True)
    return LoadReport(source, len(matched), unused)


def _source_key(key: str, state: Mapping[str, Tensor]) -> str | None:
    """The file's name for a body parameter; timm flattens `stages.0` to `stages_0` in features."""
    if key in state:
        return key
    head, _, rest = key.partition(".")
    for i, ch in enumerate(head):
        if ch == "_":
            candidate = (
                f"{head[:i]}.{head[i + 1 :]}.{rest}" if rest else f"{head[:i]}.{head[i + 1 :]}"
            )
            if candidate in state:
                return candidate
    return None


def _keys_features_only_drops(backbone: TimmFeatures) -> set[str]:
    """Parameters the full classification model has but `features_only` removes (heads, pools)."""
    kwargs = {
        k: v
        for k, v in backbone.create_kwargs.items()
        if k not in ("out_indices", "feature_location")
    }
    with torch.device("meta"):
        full = timm.create_model(backbone.timm_name, pretrained=False, **kwargs)
    return set(full.state_dict()) - set(backbone.body.state_dict())


def _timm_filter(backbone: TimmFeatures, state: dict[str, Tensor]) -> dict[str, Tensor] | None:
    """Run timm's own checkpoint converter for this architecture, if it has one."""
    kwargs = {
        k: v
        for k, v in backbone.create_kwargs.items()
        if k not in ("out_indices", "feature_location")
    }
    full = timm.create_model(backbone.timm_name, pretrained=False, **kwargs)
    convert = getattr(sys.modules.get(type(full).__module__), "checkpoint_filter_fn", None)
    if convert is None:
        return None
    try:
        return dict(convert(dict(state), full))
    except Exception:  # a converter for other checkpoints: report the original mismatch
        return None


def key_listing(title: str, keys: list[str], limit: int = 8) -> str:
    if not keys:
        return ""
    more = f" ... and {len(keys) - limit} more" if len(keys) > limit else ""
    return f"{title} ({len(keys)}): {', '.join(keys[:limit])}{more}. "

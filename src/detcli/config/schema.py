"""What `detcli check` knows about the shape of a config beyond the registries.

Component places say which registry the `type` at a config path is looked up in (datasets:
wherever the run settings found them). Plain run settings are declared by the modules of
`detcli.config.settings`, which both read and check them.
"""

from __future__ import annotations

from dataclasses import dataclass

from detcli.config.origins import ConfigPath


@dataclass(frozen=True)
class Place:
    """A config path holding a component (or a list of them) of one registry kind."""

    path: ConfigPath
    kind: str
    # Keys the builder takes out before calling the constructor (not constructor arguments).
    builder_keys: frozenset[str] = frozenset()


COMPONENT_PLACES: tuple[Place, ...] = (
    Place(("model",), "MODELS", frozenset({"train_cfg", "test_cfg"})),  # detcli.model_config
    Place(("optimizer",), "OPTIMIZERS", frozenset({"paramwise_cfg", "constructor"})),
    Place(("optim_wrapper", "optimizer"), "OPTIMIZERS"),
    Place(("param_scheduler",), "SCHEDULERS"),
    Place(("custom_hooks",), "HOOKS", frozenset({"priority"})),
    Place(("log_config", "hooks"), "HOOKS", frozenset({"priority"})),
    Place(("default_hooks", "visualization"), "HOOKS"),
    Place(("val_evaluator",), "METRICS"),
    Place(("test_evaluator",), "METRICS"),
)

# Keys naming files or folders that must exist before a run starts: key -> "file" | "dir".
PATH_KEYS: dict[str, str] = {
    "ann_file": "file",
    "img_prefix": "dir",
    "load_from": "file",
    "resume_from": "file",
}
# `init_cfg.checkpoint` may also name a hub weight (`timm:...`, `torchvision:...`, a URL).
CHECKPOINT_SCHEMES = ("timm:", "torchvision:", "http://", "https://", "hf-hub:", "hf_hub:")

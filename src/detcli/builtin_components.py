"""detcli's own components, registered as third-party plugins are: through the `detcli.plugins`
entry point `detcli` (pyproject.toml) and the `detcli_register` hook."""

from __future__ import annotations

from detcli.plugins import hookimpl
from detcli.registry import Registries


@hookimpl
def detcli_register(registries: Registries) -> None:
    """Import the modules whose decorators register detcli's components (this imports torch)."""
    import detcli.data.builder  # datasets and transforms register on import
    import detcli.engine.components  # schedulers, hooks and metrics register on import
    import detcli.models  # noqa: F401  (backbones, necks, heads, losses, detectors)
    from detcli.engine.optimizers import register_torch_optimizers

    register_torch_optimizers(registries.OPTIMIZERS)

"""Plugins: pip packages that add components through pluggy hooks.

A plugin declares an entry point in group `detcli.plugins` pointing at a module (or object)
with `@hookimpl def detcli_register(registries)`. detcli's own components come in the same
way: its entry point `detcli = detcli.builtin_components` (pyproject.toml), loaded first, so
the plugin API is complete because the core uses it.

Plugins are loaded at the entry points only (the CLI's commands, `detcli.train`, `evaluate`,
`predict`); library code below them (data, models, engine) never loads them itself.

Environment (detcli's own components load whatever they say):
  DETCLI_DISABLE_PLUGIN_AUTOLOAD=1   load no third-party plugins
  DETCLI_DISABLE_PLUGINS=a,b         skip the plugins with these entry-point names
  DETCLI_TRACE_PLUGINS=1             print every hook call (pluggy's tracing) to stderr
"""

from __future__ import annotations

import os
import sys
import traceback
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import Any

import pluggy

from detcli.errors import RegistryError
from detcli.registry import BUILTIN_SOURCE, REGISTRIES, Registries, registering_as

PLUGIN_GROUP = "detcli.plugins"
# detcli's own entry point, as pyproject.toml declares it. A source tree on PYTHONPATH without
# an install (or over an older one) has no such metadata; this copy then loads the same module.
BUILTIN_ENTRY_POINT = metadata.EntryPoint(
    name=BUILTIN_SOURCE, value="detcli.builtin_components", group=PLUGIN_GROUP
)

hookspec = pluggy.HookspecMarker("detcli")
hookimpl = pluggy.HookimplMarker("detcli")


class HookSpecs:
    """The hooks a plugin may implement (the documented contract)."""

    @hookspec
    def detcli_register(self, registries: Registries) -> None:
        """Register components: `registries.MODELS.register(MyBackbone)`, `registries.HOOKS...`."""


@dataclass
class PluginInfo:
    """One plugin as discovered: where it comes from, what it registered, or why it failed."""

    name: str  # the entry-point name (also the registry source name)
    value: str  # "package.module" the entry point points at
    distribution: str | None = None
    version: str | None = None
    registered: dict[str, list[str]] = field(default_factory=dict)  # kind -> names
    replaced: list[str] = field(default_factory=list)  # "MODELS.FPN" it took over (force=True)
    error: str | None = None
    disabled: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None and not self.disabled

    @property
    def builtin(self) -> bool:
        """detcli's own components, not a third-party plugin."""
        return self.name == BUILTIN_SOURCE


@dataclass
class _State:
    manager: pluggy.PluginManager | None = None
    plugins: list[PluginInfo] = field(default_factory=list)


_state = _State()


def load_plugins() -> list[PluginInfo]:
    """Register detcli's components and every installed plugin's, once per process."""
    if _state.manager is not None:
        return _state.plugins
    manager = pluggy.PluginManager("detcli")
    manager.add_hookspecs(HookSpecs)
    if os.environ.get("DETCLI_TRACE_PLUGINS"):
        manager.trace.root.setwriter(lambda text: sys.stderr.write(text))
        manager.enable_tracing()
    _state.manager = manager

    from detcli import __version__

    own, third_party = _entry_points()
    builtin = PluginInfo(BUILTIN_SOURCE, own.value, "detcli", __version__)
    _state.plugins = [builtin]
    _register(manager, builtin, own.load())
    if builtin.error:  # our own components failing is a bug, not a user problem: surface it
        raise RuntimeError(f"detcli's built-in components failed to register: {builtin.error}")

    if autoload_disabled():
        return _state.plugins
    disabled = {
        n.strip() for n in os.environ.get("DETCLI_DISABLE_PLUGINS", "").split(",") if n.strip()
    }
    for ep in third_party:
        _state.plugins.append(_load_third_party(manager, ep, disabled))
    return _state.plugins


def _load_third_party(
    manager: pluggy.PluginManager, ep: metadata.EntryPoint, disabled: set[str]
) -> PluginInfo:
    """Import one plugin's entry point and register its components; failures are recorded."""
    dist = getattr(ep, "dist", None)
    info = PluginInfo(
        ep.name, ep.value, dist.name if dist else None, dist.version if dist else None
    )
    if ep.name in disabled:
        info.disabled = True
        return info
    if ep.name == BUILTIN_SOURCE:
        info.error = (
            f"its entry point is named {BUILTIN_SOURCE!r}, the name of detcli's own components; "
            f'rename it in the package\'s [project.entry-points."{PLUGIN_GROUP}"].'
        )
        return info
    with registering_as(ep.name):  # decorators run at import time count for the plugin
        try:
            plugin = ep.load()
        except (Exception, SystemExit) as exc:  # sys.exit() in a plugin must not end detcli
            info.error = _describe(exc)
            _forget(info)
            return info
    _register(manager, info, plugin)
    return info


def _entry_points() -> tuple[metadata.EntryPoint, list[metadata.EntryPoint]]:
    """detcli's own entry point, and the third-party ones sorted by name."""
    found = sorted(metadata.entry_points(group=PLUGIN_GROUP), key=lambda e: e.name)
    own = [ep for ep in found if ep.name == BUILTIN_SOURCE and _distribution(ep) == "detcli"]
    return (own[0] if own else BUILTIN_ENTRY_POINT), [ep for ep in found if ep not in own]


def _distribution(ep: metadata.EntryPoint) -> str | None:
    dist = getattr(ep, "dist", None)
    return None if dist is None else str(dist.name)


def autoload_disabled() -> bool:
    """True when DETCLI_DISABLE_PLUGIN_AUTOLOAD asks for detcli's own components only."""
    return os.environ.get("DETCLI_DISABLE_PLUGIN_AUTOLOAD", "").lower() not in ("", "0", "false")


def loaded_plugins() -> list[PluginInfo]:
    """The plugins `load_plugins()` found (empty before it ran)."""
    return list(_state.plugins)


def replacing_plugins() -> list[PluginInfo]:
    """Plugins that took over a type another source registered (`register(..., force=True)`)."""
    return [p for p in _state.plugins if p.replaced]


def failed_plugins() -> list[PluginInfo]:
    """Plugins that could not be imported or registered."""
    return [p for p in _state.plugins if p.error]


def _register(manager: pluggy.PluginManager, info: PluginInfo, plugin: ModuleType | Any) -> None:
    """Register one plugin's hooks and call its `detcli_register` with only its own impls."""
    try:
        manager.register(plugin, name=info.name)
        manager.check_pending()  # a misspelled hook name is an error, not silence
    except (Exception, SystemExit) as exc:
        info.error = _describe(exc)
        if manager.is_registered(plugin):
            manager.unregister(plugin)
        _forget(info)
        return
    others = [p for p in manager.get_plugins() if p is not plugin]
    call = manager.subset_hook_caller("detcli_register", remove_plugins=others)
    before = {r.kind: {e.name: e.source for e in r} for r in REGISTRIES}
    with registering_as(info.name):
        try:
            call(registries=REGISTRIES)
        except (Exception, SystemExit) as exc:
            # A name clash (RegistryError) is skipped like any failure: which of the two types
            # a config would get would be a guess, and `detcli plugins` must still show it.
            info.error = str(exc) if isinstance(exc, RegistryError) else _describe(exc)
            manager.unregister(plugin)
            _forget(info)
            return
    info.registered = {r.kind: r.names(info.name) for r in REGISTRIES if r.names(info.name)}
    info.replaced = [
        f"{r.kind}.{name} (from {before[r.kind][name]})"
        for r in REGISTRIES
        for name in r.names(info.name)
        if name in before[r.kind] and before[r.kind][name] != info.name
    ]


def _forget(info: PluginInfo) -> None:
    """Undo whatever a failing plugin registered before it failed."""
    for registry in REGISTRIES:
        registry.remove_source(info.name)


def _describe(exc: BaseException) -> str:
    """`ErrorType: message (file:line)` of where the plugin's code raised."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" ({frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"

"""Registries: type name -> class (or factory), filled by decorators and by plugins.

A config mapping `{type: FPN, out_channels: 256}` becomes `MODELS.build(cfg)`. Each entry
remembers who registered it (`detcli` or a plugin's name), so clashes name both parties and
`detcli plugins` can say what each plugin added.

Constructor arguments are the config keys: `signature()` reads them from the signature.
Parts receive built parts: an argument annotated `Model[FPN]` (or `list[Transform[Any]]`,
`dict[str, Model[...]]`, ...) is given in a config as a `{type: ...}` mapping, and `build`
builds it, bottom-up, before calling the constructor. That is the only place a config turns
into objects, and how `detcli check` knows what to look inside without building anything.
"""

from __future__ import annotations

import collections.abc as cabc
import contextlib
import contextvars
import inspect
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from detcli.errors import RegistryError
from detcli.suggest import did_you_mean

T = TypeVar("T", bound=Callable[..., Any])
P = TypeVar("P")

BUILTIN_SOURCE = "detcli"
_current_source: contextvars.ContextVar[str] = contextvars.ContextVar(
    "detcli_registry_source", default=BUILTIN_SOURCE
)


@dataclass(frozen=True)
class ComponentOf:
    """Annotation marker: this argument is the config of a component of registry `kind`."""

    kind: str


# Constructor arguments that are built parts: `neck: Model[FPN]` receives an FPN; a config
# writes it as `{type: FPN, ...}` and `Registry.build` builds it first.
Model = Annotated[P, ComponentOf("MODELS")]
Transform = Annotated[P, ComponentOf("TRANSFORMS")]
Dataset = Annotated[P, ComponentOf("DATASETS")]
Metric = Annotated[P, ComponentOf("METRICS")]

# The same markers when the argument's class does not matter (plugins written against them).
ModelCfg = Model[Any]
TransformCfg = Transform[Any]
DatasetCfg = Dataset[Any]
HookCfg = Annotated[Any, ComponentOf("HOOKS")]
OptimizerCfg = Annotated[Any, ComponentOf("OPTIMIZERS")]
SchedulerCfg = Annotated[Any, ComponentOf("SCHEDULERS")]
MetricCfg = Metric[Any]


@dataclass(frozen=True)
class ComponentSlot:
    """An argument that holds built components: one, a list, lists of lists (TestTimeAug's
    alternatives per step), or a mapping of them."""

    kind: str
    single: bool
    many: bool
    nested: bool = False
    mapping: bool = False


def component_slot(hint: Any) -> ComponentSlot | None:
    """If a type hint marks built components (`Model[X]`, `list[Transform[X]]`, ...), which kind."""
    single = many = nested = mapping = None
    for option in _union_options(hint):
        origin, args = typing.get_origin(option), typing.get_args(option)
        if _component_kind(option):
            single = _component_kind(option)
        elif origin in _SEQUENCES and args:
            if _component_kind(args[0]):
                many = _component_kind(args[0])
            elif typing.get_origin(args[0]) in _SEQUENCES:
                inner = typing.get_args(args[0])
                nested = _component_kind(inner[0]) if inner else None
        elif origin in _MAPPINGS and len(args) == 2 and _component_kind(args[1]):
            mapping = _component_kind(args[1])
    kind = single or many or nested or mapping
    if kind is None:
        return None
    return ComponentSlot(
        kind, single is not None, many is not None, nested is not None, mapping is not None
    )


_SEQUENCES = (list, tuple, cabc.Sequence, cabc.MutableSequence, cabc.Iterable, cabc.Collection)
_MAPPINGS = (dict, cabc.Mapping, cabc.MutableMapping)


def _union_options(hint: Any) -> tuple[Any, ...]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)


def _component_kind(hint: Any) -> str | None:
    if typing.get_origin(hint) is typing.Annotated:
        for meta in typing.get_args(hint)[1:]:
            if isinstance(meta, ComponentOf):
                return meta.kind
    return None


@dataclass(frozen=True)
class Entry:
    """One registered type: its name, the class or factory, and who registered it."""

    name: str
    obj: Callable[..., Any]
    source: str

    @property
    def qualname(self) -> str:
        return (
            f"{getattr(self.obj, '__module__', '?')}.{getattr(self.obj, '__qualname__', self.name)}"
        )


@dataclass(frozen=True)
class Argument:
    """A constructor argument: a config key with its type hint and default."""

    name: str
    annotation: Any  # a resolved type hint, or inspect.Parameter.empty
    default: Any  # inspect.Parameter.empty when required

    @property
    def required(self) -> bool:
        return self.default is inspect.Parameter.empty


@dataclass(frozen=True)
class Signature:
    """What a registered type accepts from a config."""

    arguments: dict[str, Argument]
    accepts_any: bool  # has **kwargs: unknown keys cannot be detected


class Registry:
    """Type names of one kind (MODELS, TRANSFORMS, ...) mapped to classes or factories."""

    def __init__(self, kind: str, injected: tuple[str, ...] = ()):
        self.kind = kind
        # Arguments the builder passes in code (an optimizer's `params`), never from a config.
        self.injected = injected
        self._entries: dict[str, Entry] = {}
        # Where nested parts of other kinds are looked up (a dataset's TRANSFORMS pipeline);
        # set when a `Registries` takes this registry in.
        self.family: Registries | None = None

    def register(
        self, obj: T | None = None, *, name: str | None = None, force: bool = False
    ) -> Any:
        """Decorator (`@MODELS.register()` or `@MODELS.register`) adding a class under its name."""
        if obj is not None:
            self.add(obj, name=name, force=force)
            return obj

        def decorator(target: T) -> T:
            self.add(target, name=name, force=force)
            return target

        return decorator

    def add(self, obj: Callable[..., Any], name: str | None = None, force: bool = False) -> None:
        """Register `obj` under `name` (default: its `__name__`) for the current source."""
        name = name or obj.__name__
        source = _current_source.get()
        existing = self._entries.get(name)
        if existing is not None and existing.obj is not obj and not force:
            new = Entry(name, obj, source)
            raise RegistryError(
                f"{self.kind} type {name!r} is registered twice: by {_who(existing)} and by "
                f"{_who(new)}. Uninstall one of them, or disable a plugin with "
                f"DETCLI_DISABLE_PLUGINS=<name>."
            )
        self._entries[name] = Entry(name, obj, source)

    def remove_source(self, source: str) -> list[str]:
        """Forget every type `source` registered (a plugin that failed half-way); return names."""
        names = [n for n, e in self._entries.items() if e.source == source]
        for n in names:
            del self._entries[n]
        return names

    def names(self, source: str | None = None) -> list[str]:
        """Registered names, sorted; only those of `source` if given."""
        return sorted(n for n, e in self._entries.items() if source is None or e.source == source)

    def entry(self, name: str) -> Entry:
        """The entry for `name`; an unknown name raises with near-miss suggestions."""
        try:
            return self._entries[name]
        except KeyError:
            raise RegistryError(self.unknown_message(name)) from None

    def get(self, name: str) -> Callable[..., Any]:
        """The class or factory registered as `name`."""
        return self.entry(name).obj

    def unknown_message(self, name: str) -> str:
        """Why `name` is not here, with the near names and where this registry's types come from."""
        if not self._entries:
            return f"Unknown {self.kind} type {name!r}: no {self.kind} types are registered."
        sources = ", ".join(sorted({e.source for e in self._entries.values()}))
        return (
            f"Unknown {self.kind} type {name!r}.{did_you_mean(name, self._entries)} "
            f"Registered {self.kind} types come from: {sources} "
            f"(`detcli types {self.kind}` lists them)."
        )

    def signature(self, name: str) -> Signature:
        """The config keys `name` accepts (injected arguments left out), from its signature."""
        return signature_of(self.get(name), skip=self.injected)

    def build(self, cfg: Mapping[str, Any], *, where: str = "", **injected: Any) -> Any:
        """Build what a `{type: Name, **args}` mapping describes; `injected`: code-side args.

        Arguments annotated as components (`Model[...]`, lists and mappings of them) are
        built first, from their own registries, so every constructor receives built parts.
        `where` (e.g. `model.neck`) names the config place in error messages.
        """
        label = f"{where} " if where else ""
        if not isinstance(cfg, Mapping) or "type" not in cfg:
            raise RegistryError(f"{label}A {self.kind} config needs a `type` key, got {cfg!r}.")
        type_ = cfg["type"]
        obj = type_ if callable(type_) else self.get(str(type_))
        args = {k: v for k, v in cfg.items() if k != "type"}
        try:
            inspect.signature(obj).bind(**injected, **args)
        except TypeError as exc:
            raise RegistryError(
                f"{label}Cannot build {self.kind} type {cfg['type']!r}: {exc}."
            ) from None
        except ValueError:  # some builtins have no introspectable signature
            pass
        # In the constructor's argument order, not the config's key order: parts then draw
        # their random initial weights in one order (backbone before neck before heads).
        for argument in signature_of(obj, skip=self.injected).arguments.values():
            slot = component_slot(argument.annotation)
            if slot is not None and argument.name in args:
                at = f"{where}.{argument.name}" if where else argument.name
                args[argument.name] = self._build_slot(slot, args[argument.name], at)
        return obj(**injected, **args)

    def _build_slot(self, slot: ComponentSlot, value: Any, where: str) -> Any:
        """Build the components in one argument's value (one, a list, nested lists, a dict)."""
        registry = self.family[slot.kind] if self.family is not None else self

        def one(item: Any, at: str) -> Any:
            # Already-built objects pass through (a Python caller, or a default kept as is).
            return registry.build(item, where=at) if isinstance(item, Mapping) else item

        if slot.single and isinstance(value, Mapping) and "type" in value:
            return one(value, where)
        if slot.mapping and isinstance(value, Mapping):
            return {k: one(v, f"{where}.{k}") for k, v in value.items()}
        if (slot.many or slot.nested) and isinstance(value, (list, tuple)):
            return [
                [one(v, f"{where}.{i}.{j}") for j, v in enumerate(item)]
                if slot.nested and isinstance(item, (list, tuple))
                else one(item, f"{where}.{i}")
                for i, item in enumerate(value)
            ]
        return value

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry]:
        return iter(sorted(self._entries.values(), key=lambda e: e.name))

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self)} types)"


def signature_of(obj: Callable[..., Any], skip: tuple[str, ...] = ()) -> Signature:
    """Arguments of a class's constructor (or a factory), with resolved type hints."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return Signature({}, accepts_any=True)
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        hints = typing.get_type_hints(target, include_extras=True)
    except Exception:  # unresolvable forward references: check names, not types
        hints = {}
    arguments: dict[str, Argument] = {}
    accepts_any = False
    for param in sig.parameters.values():
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            accepts_any = True
        elif param.kind is not inspect.Parameter.VAR_POSITIONAL and param.name not in skip:
            annotation = hints.get(param.name, inspect.Parameter.empty)
            arguments[param.name] = Argument(param.name, annotation, param.default)
    base = _forwarded_to(obj) if accepts_any else None
    if base is not None:
        # `**kwargs` handed to the base class (ResNeXt -> ResNet): the base's keys count too.
        inherited = signature_of(base, skip)
        arguments = {**inherited.arguments, **arguments}
        accepts_any = inherited.accepts_any
    return Signature(arguments, accepts_any)


def _forwarded_to(obj: Callable[..., Any]) -> type | None:
    """The detcli-style base class a subclass's `**kwargs` go to, if `obj` is such a class.

    Only a base defined outside torch counts: `nn.Module.__init__` takes anything.
    """
    if not inspect.isclass(obj):
        return None
    for base in obj.__mro__[1:]:
        if "__init__" in vars(base):
            module = getattr(base, "__module__", "")
            return None if base is object or module.split(".")[0] == "torch" else base
    return None


@contextlib.contextmanager
def registering_as(source: str) -> Iterator[None]:
    """Attribute registrations made inside the block to `source` (a plugin's name)."""
    token = _current_source.set(source)
    try:
        yield
    finally:
        _current_source.reset(token)


def _who(entry: Entry) -> str:
    owner = "detcli" if entry.source == BUILTIN_SOURCE else f"plugin {entry.source!r}"
    return f"{owner} ({entry.qualname})"


MODELS = Registry("MODELS")
TRANSFORMS = Registry("TRANSFORMS")
DATASETS = Registry("DATASETS")
HOOKS = Registry("HOOKS")
OPTIMIZERS = Registry("OPTIMIZERS", injected=("params",))
SCHEDULERS = Registry("SCHEDULERS", injected=("optimizer",))
METRICS = Registry("METRICS")


class Registries:
    """Registries by kind: `registries.MODELS` or `registries["MODELS"]` (what plugins receive)."""

    def __init__(self, *registries: Registry):
        self._by_kind = {r.kind: r for r in registries}
        for registry in registries:
            registry.family = self

    def __getattr__(self, kind: str) -> Registry:
        try:
            return self._by_kind[kind]
        except KeyError:
            raise AttributeError(
                f"no registry {kind!r}.{did_you_mean(kind, self._by_kind)}"
            ) from None

    def __getitem__(self, kind: str) -> Registry:
        try:
            return self._by_kind[kind.upper()]
        except KeyError:
            raise RegistryError(
                f"There is no {kind!r} registry.{did_you_mean(kind, self._by_kind)} "
                f"Kinds: {', '.join(self._by_kind)}."
            ) from None

    def __iter__(self) -> Iterator[Registry]:
        return iter(self._by_kind.values())

    def kinds(self) -> list[str]:
        """The registry kinds, in their canonical order."""
        return list(self._by_kind)

    def find(self, name: str) -> list[Registry]:
        """The registries that hold a type called `name`."""
        return [r for r in self if name in r]


REGISTRIES = Registries(MODELS, TRANSFORMS, DATASETS, HOOKS, OPTIMIZERS, SCHEDULERS, METRICS)

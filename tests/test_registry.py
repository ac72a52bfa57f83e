"""Registries: decorator registration, build, near-miss messages, clashes, signatures."""

from __future__ import annotations

from typing import Any

import pytest

from detcli.errors import RegistryError
from detcli.registry import REGISTRIES, ModelCfg, Registry, registering_as


@pytest.fixture
def models() -> Registry:
    return Registry("MODELS")


def test_decorator_registers_under_class_name_and_builds(models):
    @models.register()
    class FPN:
        def __init__(self, out_channels: int, num_outs: int = 5):
            self.out_channels, self.num_outs = out_channels, num_outs

    @models.register(name="Custom")
    class Other:
        pass

    neck = models.build({"type": "FPN", "out_channels": 256})
    assert isinstance(neck, FPN) and neck.out_channels == 256 and neck.num_outs == 5
    assert isinstance(models.build({"type": "Custom"}), Other)
    assert models.names() == ["Custom", "FPN"] and "FPN" in models and len(models) == 2


def test_build_passes_injected_arguments():
    optimizers = Registry("OPTIMIZERS", injected=("params",))

    @optimizers.register
    class SGD:
        def __init__(self, params: Any, lr: float):
            self.params, self.lr = params, lr

    opt = optimizers.build({"type": "SGD", "lr": 0.1}, params=[1, 2])
    assert opt.params == [1, 2] and opt.lr == 0.1
    assert list(optimizers.signature("SGD").arguments) == ["lr"]


def test_unknown_type_suggests_near_names_case_insensitively(models):
    for name in ("FPN", "HRFPN", "RandomFlip", "ResNet"):
        models.add(type(name, (), {}), name=name)
    with pytest.raises(RegistryError) as err:
        models.get("fPn")
    assert "Unknown MODELS type 'fPn'. Did you mean 'FPN'" in str(err.value)
    assert "Did you mean 'RandomFlip'" in models.unknown_message("Randomflip")
    assert "come from: detcli" in models.unknown_message("Nothing")


def test_bad_arguments_are_reported_at_build(models):
    @models.register()
    class FPN:
        def __init__(self, out_channels: int):
            pass

    with pytest.raises(RegistryError, match=r"Cannot build MODELS type 'FPN'.*out_chanels"):
        models.build({"type": "FPN", "out_channels": 3, "out_chanels": 3})
    with pytest.raises(RegistryError, match="needs a `type` key"):
        models.build({"out_channels": 3})


def test_same_name_from_two_sources_names_both(models):
    with registering_as("plugin-a"):
        models.add(type("Neck", (), {"__module__": "a.necks"}))
    with registering_as("plugin-b"), pytest.raises(RegistryError) as err:
        models.add(type("Neck", (), {"__module__": "b.necks"}))
    message = str(err.value)
    assert (
        "plugin 'plugin-a' (a.necks.Neck)" in message
        and "plugin 'plugin-b' (b.necks.Neck)" in message
    )
    assert "DETCLI_DISABLE_PLUGINS" in message


def test_re_registering_the_same_object_is_harmless_and_sources_are_tracked(models):
    cls = type("Head", (), {})
    models.add(cls)
    models.add(cls)
    with registering_as("p"):
        models.add(type("PHead", (), {}))
    assert models.entry("Head").source == "detcli" and models.names("p") == ["PHead"]
    assert models.remove_source("p") == ["PHead"] and "PHead" not in models


def test_signature_resolves_hints_and_component_annotations(models):
    class Detector:
        def __init__(self, backbone: ModelCfg, depth: int = 50, *args: Any, **kwargs: Any):
            pass

    models.register(Detector)
    sig = models.signature("Detector")
    assert list(sig.arguments) == ["backbone", "depth"] and sig.accepts_any
    assert sig.arguments["backbone"].required and sig.arguments["depth"].default == 50


def test_registries_by_kind():
    assert REGISTRIES["models"] is REGISTRIES.MODELS
    assert REGISTRIES.kinds() == [
        "MODELS",
        "TRANSFORMS",
        "DATASETS",
        "HOOKS",
        "OPTIMIZERS",
        "SCHEDULERS",
        "METRICS",
    ]
    with pytest.raises(RegistryError, match="Did you mean 'MODELS'"):
        REGISTRIES["MODEL"]

"""Plugin discovery through real pip-installed packages with `detcli.plugins` entry points."""

from __future__ import annotations

import pytest

from conftest import REPO, run_detcli
from detcli.plugins import BUILTIN_ENTRY_POINT, PLUGIN_GROUP, load_plugins


def test_plugins_lists_version_and_registered_names(plugin_env):
    result = run_detcli("plugins", env=plugin_env("detcli-toy"))
    assert result.code == 0, result.err
    row = next(line for line in result.out.splitlines() if "detcli-toy" in line)
    assert "1.2.3" in row and "ok" in row
    assert "MODELS: ToyBackbone, ToyDetector, ToyHead, ToyNeck" in result.out
    assert "HOOKS: ToyHook" in result.out  # registered by decorator at import: still the plugin's
    assert "TRANSFORMS: ToyFlip" in result.out and "DATASETS: ToyDataset, ToyRepeat" in result.out
    # detcli's own types, through the same hook, are summed up apart from the plugins
    builtin = next(line for line in result.out.splitlines() if "built-in types" in line)
    assert builtin.startswith("detcli 0.1.0") and "OPTIMIZERS" in builtin
    assert not any(line.startswith("│ detcli ") for line in result.out.splitlines())


def test_plugin_types_are_usable_by_check_and_types(plugin_env, write, tmp_path):
    (tmp_path / "imgs").mkdir()
    write("ann.json", "{}")
    config = write(
        "toy.yaml",
        f"""
        classes: [a, b, c]
        model:
          type: ToyDetector
          backbone: {{type: ToyBackbone, depth: 34}}
          neck: {{type: ToyNeck, in_channels: [64, 128], out_channels: 64}}
          bbox_head: {{type: ToyHead, num_classes: 3}}
        data:
          train:
            type: ToyRepeat
            times: 2
            dataset:
              type: ToyDataset
              ann_file: {tmp_path / "ann.json"}
              img_prefix: {tmp_path / "imgs"}
              classes: ${{classes}}
              pipeline: [{{type: ToyFlip, flip_ratio: 0.5}}]
        optimizer: {{type: SGD, lr: 0.01, momentum: 0.9}}
        custom_hooks: [{{type: ToyHook, interval: 2}}]
    """,
    )
    env = plugin_env("detcli-toy")
    clean = run_detcli("check", str(config), env=env)
    assert clean.code == 0, clean.out + clean.err
    assert "no problems" in clean.out

    bad = run_detcli(
        "check",
        str(config),
        "--set",
        "model.neck.type=toyneck",
        "--set",
        "data.train.dataset.pipeline.0.type=ToyFlp",
        "--set",
        "model.bbox_head.num_classes=4",
        "--set",
        "model.backbone.depht=50",
        env=env,
    )
    assert bad.code == 2
    assert "3 problem(s)" not in bad.out and "4 problem(s)" in bad.out
    assert "Did you mean 'ToyNeck'?" in bad.out and "Did you mean 'ToyFlip'?" in bad.out
    assert "num_classes is 4, but data.train.dataset.classes lists 3 classes" in bad.out
    assert "ToyBackbone has no argument 'depht'. Did you mean 'depth'?" in bad.out
    assert "Traceback" not in bad.out + bad.err

    types = run_detcli("types", "models", env=env)
    assert types.code == 0
    assert "ToyBackbone" in types.out and "depth=18" in types.out and "toy" in types.out
    one = run_detcli("types", "MODELS", "ToyNeck", env=env)
    assert "in_channels" in one.out and "required" in one.out and "list[int]" in one.out


def test_broken_plugin_is_reported_and_the_cli_keeps_working(plugin_env, write):
    env = plugin_env("detcli-toy", "detcli-broken")
    result = run_detcli("plugins", env=env)
    assert result.code == 0, result.err
    row = next(line for line in result.out.splitlines() if "detcli-broken" in line)
    assert "failed" in row
    assert (
        "ModuleNotFoundError" in result.out
        and "detcli_dependency_that_is_not_installed" in result.out
    )
    assert "plugin broken" in result.err and "failed to load" in result.err
    assert "ToyBackbone" in result.out  # other plugins still load

    config = write("c.yaml", "optimizer: {type: SGD, lr: 0.1}\n")
    check = run_detcli("check", str(config), env=env)
    assert check.code == 0 and "no problems" in check.out and "broken" in check.err
    assert run_detcli("print-config", str(config), env=env).code == 0


def test_two_plugins_with_one_name_skip_the_later_naming_both(plugin_env):
    """A name clash is reported and that plugin skipped; `detcli plugins` keeps working."""
    result = run_detcli("plugins", env=plugin_env("detcli-toy", "detcli-clash"))
    assert result.code == 0 and "Traceback" not in result.err
    out = " ".join(result.out.split())
    assert "ToyBackbone" in out and "plugin 'clash'" in out and "plugin 'toy'" in out
    assert "failed to load" in result.err
    # The way out the message offers works:
    env = {**plugin_env("detcli-toy", "detcli-clash"), "DETCLI_DISABLE_PLUGINS": "clash"}
    result = run_detcli("plugins", env=env)
    assert result.code == 0 and "disabled" in result.out


def test_plugins_calling_sys_exit_or_replacing_builtins_are_reported(plugin_env, write):
    env = plugin_env("detcli-hostile")
    result = run_detcli("plugins", env=env)
    assert result.code == 0, result.err
    out = " ".join(result.out.split())
    assert "SystemExit: 3" in out and "SystemExit: 4" in out  # import and hook, both skipped
    assert "replaces MODELS.FPN (from detcli)" in out
    assert "plugin override replaces MODELS.FPN" in " ".join(result.err.split())
    config = write("c.yaml", "optimizer: {type: SGD, lr: 0.1}\n")
    check = run_detcli("check", str(config), env=env)
    assert check.code == 0 and "no problems" in check.out  # every other command keeps working


def test_autoload_can_be_disabled(plugin_env):
    env = {**plugin_env("detcli-toy"), "DETCLI_DISABLE_PLUGIN_AUTOLOAD": "1"}
    result = run_detcli("plugins", env=env)
    assert result.code == 0 and "detcli-toy" not in result.out
    assert "built-in types" in result.out and "DETCLI_DISABLE_PLUGIN_AUTOLOAD is set" in result.out


def test_hook_calls_can_be_traced(plugin_env):
    env = {**plugin_env("detcli-toy"), "DETCLI_TRACE_PLUGINS": "1"}
    result = run_detcli("plugins", env=env)
    assert result.code == 0 and "detcli_register" in result.err


def test_builtins_register_through_detclis_own_entry_point():
    """pyproject declares it; `load_plugins` loads it first (from the installed metadata, or
    the same entry point written in plugins.py when a source tree runs uninstalled)."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = project["entry-points"][PLUGIN_GROUP]
    assert declared == {BUILTIN_ENTRY_POINT.name: BUILTIN_ENTRY_POINT.value}
    builtin = load_plugins()[0]
    assert builtin.builtin and builtin.ok and builtin.value == "detcli.builtin_components"
    assert "FPN" in builtin.registered["MODELS"] and "SGD" in builtin.registered["OPTIMIZERS"]
    assert "CocoDataset" in builtin.registered["DATASETS"]

"""The CLI shell: output formats, error rendering (exit 2, no traceback), lazy torch import."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from conftest import REPO, run_detcli
from detcli.config.yaml_source import ConfigLoader

TRASH = str(REPO / "configs" / "trash.yaml")


def test_print_config_yaml_json_and_origin(cli):
    as_yaml = cli("print-config", TRASH, "--set", "optimizer.lr=0.01")
    assert as_yaml.code == 0 and as_yaml.err == ""
    cfg = yaml.load(as_yaml.out, Loader=ConfigLoader)
    assert cfg["optimizer"]["lr"] == 0.01
    as_json = cli("print-config", TRASH, "-s", "optimizer.lr=0.01", "--format", "json")
    assert json.loads(as_json.out) == cfg
    origin = cli("print-config", TRASH, "--show-origin", "-s", "seed=7")
    assert "seed: 7  # --set seed=7" in origin.out
    assert "max_norm: 35  # configs/trash.yaml:" in origin.out


@pytest.mark.parametrize(
    ("files", "args", "expected"),
    [
        ({"c.yaml": "a: [1, 2\nb: 3\n"}, [], "c.yaml:2:"),
        ({"c.yaml": "_base_: gone.yaml\n"}, [], "gone.yaml"),
        ({"c.yaml": "_base_: d.yaml\n", "d.yaml": "_base_: c.yaml\n"}, [], "cycle"),
        ({"c.yaml": "- 1\n"}, [], "must be a mapping"),
        ({"c.yaml": "a: 1\n"}, ["--set", "a"], "has no '='"),
        ({"c.yaml": "a: 1\n"}, ["--set", "=1"], "empty key path"),
        ({"c.yaml": "a: [1]\n"}, ["--set", "a.3=1"], "past the end"),
        ({"c.yaml": "_base_: d.yaml\na: {_delete_: true}\n", "d.yaml": "a: 1\n"}, [], "_delete_"),
    ],
)
def test_user_errors_exit_2_with_one_message_and_no_traceback(
    cli, write, tmp_path, files, args, expected
):
    for name, text in files.items():
        write(name, text)
    for command in ("print-config", "check"):
        result = cli(command, str(tmp_path / "c.yaml"), *args)
        assert result.code == 2
        assert expected in " ".join(result.err.split())
        assert "Traceback" not in result.err and result.out == ""


def test_unknown_option_and_missing_file(cli, tmp_path):
    result = cli("print-config", TRASH, "--colour")
    assert result.code == 2 and "No such option" in result.err and "Traceback" not in result.err
    result = cli("print-config", str(tmp_path / "nope.yaml"))
    assert result.code == 2 and "does not exist" in result.err


def test_unknown_kind_for_types(cli):
    result = cli("types", "MODEL")
    assert result.code == 2 and "Did you mean 'MODELS'" in result.err


def test_debug_shows_the_traceback(write, tmp_path):
    write("c.yaml", "- 1\n")
    result = run_detcli("--debug", "print-config", str(tmp_path / "c.yaml"))
    assert result.code != 0 and "Traceback" in result.err and "ConfigError" in result.err


def test_check_reports_reference_config_problems_with_paths(cli):
    result = cli("check", TRASH, "--set", "model.roi_head.bbox_head.num_classes=11")
    assert result.code == 2
    assert "num_classes is 11, but data.train.classes lists 10 classes" in result.out
    assert "data.train.ann_file (configs/trash.yaml:" in result.out


def _imported_modules(*args: str) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "detcli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    return {
        line.split("|")[-1].strip().split(".")[0]
        for line in proc.stderr.splitlines()
        if "|" in line
    }


def test_help_and_print_config_do_not_import_torch():
    for args in (
        ["--help"],
        ["print-config", "configs/trash.yaml", "--show-origin"],
        ["check", "--help"],
    ):
        modules = _imported_modules(*args)
        assert "detcli" in modules
        assert not modules & {"torch", "torchvision", "timm", "numpy", "pycocotools"}, args


def test_python_m_detcli_version():
    result = run_detcli("--version")
    assert result.code == 0 and result.out.startswith("detcli ")

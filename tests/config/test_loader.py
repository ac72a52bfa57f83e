"""Loading configs: `_base_` chains, merge rules, `_delete_`, JSON, YAML pitfalls, references."""

from __future__ import annotations

import json

import pytest

from detcli.config import ConfigDict, load_config, resolve_config
from detcli.errors import ConfigError


def test_bases_merge_left_to_right_then_own_keys(write):
    write("base/a.yaml", "x: 1\nopt: {lr: 0.1, momentum: 0.9}\nlst: [1, 2]\n")
    write("base/b.yaml", "x: 2\nopt: {lr: 0.2}\n")
    cfg_path = write(
        "exp.yaml", "_base_: [base/a.yaml, base/b.yaml]\nopt: {wd: 0.0001}\nlst: [3]\n"
    )
    cfg = load_config(cfg_path)
    assert cfg.to_dict() == {"x": 2, "opt": {"lr": 0.2, "momentum": 0.9, "wd": 0.0001}, "lst": [3]}
    assert "_base_" not in cfg


def test_base_as_string_relative_to_file_and_bases_of_bases(write):
    write("configs/_base_/root.yaml", "model: {type: A, depth: 50, norm: {type: BN}}\n")
    write("configs/_base_/mid.yaml", "_base_: root.yaml\nmodel: {depth: 101}\n")
    cfg_path = write(
        "configs/exp/leaf.yaml", "_base_: ../_base_/mid.yaml\nmodel: {norm: {eval: true}}\n"
    )
    resolved = resolve_config(cfg_path)
    assert resolved.cfg.model.to_dict() == {
        "type": "A",
        "depth": 101,
        "norm": {"type": "BN", "eval": True},
    }
    assert [p.name for p in resolved.files] == ["leaf.yaml", "mid.yaml", "root.yaml"]


def test_delete_replaces_the_inherited_mapping(write):
    write("base.yaml", "backbone: {type: ResNet, depth: 50, frozen_stages: 1}\nneck: {type: FPN}\n")
    cfg_path = write(
        "hr.yaml", "_base_: base.yaml\nbackbone: {_delete_: true, type: HRNet, extra: {w: 32}}\n"
    )
    cfg = load_config(cfg_path)
    assert cfg.backbone.to_dict() == {"type": "HRNet", "extra": {"w": 32}}
    assert cfg.neck.type == "FPN"


def test_delete_without_anything_to_delete_is_dropped(write):
    cfg = load_config(
        write("a.yaml", "opt: {_delete_: true, lr: 1}\nlst: [{_delete_: false, a: 1}]\n")
    )
    assert cfg.to_dict() == {"opt": {"lr": 1}, "lst": [{"a": 1}]}


def test_delete_on_a_non_mapping_is_an_error_naming_file_and_path(write):
    write("base.yaml", "step: [8, 11]\n")
    cfg_path = write("exp.yaml", "_base_: base.yaml\nstep:\n  _delete_: true\n  at: 3\n")
    with pytest.raises(ConfigError) as err:
        load_config(cfg_path)
    message = str(err.value)
    assert "exp.yaml:3" in message and "step" in message and "list" in message


def test_delete_must_be_boolean(write):
    write("base.yaml", "a: {b: 1}\n")
    with pytest.raises(ConfigError, match="must be true or false"):
        load_config(write("exp.yaml", "_base_: base.yaml\na: {_delete_: yes please}\n"))


def test_json_config_and_json_base(write):
    write("base.json", json.dumps({"model": {"type": "A", "ratios": [0.5, 1.0]}}))
    cfg = load_config(write("exp.yaml", "_base_: base.json\nmodel: {type: B}\n"))
    assert cfg.model.to_dict() == {"type": "B", "ratios": [0.5, 1.0]}


def test_exponent_floats_are_floats(write):
    cfg = load_config(write("a.yaml", "wd: 1e-4\nlr: 2E-3\nbig: 1e+3\nver: '1e-4'\nint: 10\n"))
    assert cfg.wd == pytest.approx(1e-4) and isinstance(cfg.wd, float)
    assert cfg.lr == pytest.approx(2e-3) and cfg.big == 1000.0
    assert cfg.ver == "1e-4" and cfg.int == 10


def test_duplicate_key_is_an_error_with_both_lines(write):
    with pytest.raises(
        ConfigError, match=r"a.yaml:3: duplicate key 'lr' \(first given on line 2\)"
    ):
        load_config(write("a.yaml", "optimizer:\n  lr: 0.1\n  lr: 0.2\n"))


def test_yaml_anchors_and_merge_keys_work(write):
    cfg = load_config(
        write("a.yaml", "norm: &n {mean: [1, 2], std: [3, 4]}\nstep: {<<: *n, to_rgb: true}\n")
    )
    assert cfg.step.to_dict() == {"mean": [1, 2], "std": [3, 4], "to_rgb": True}


def test_references_resolve_after_merge_and_keep_types(write):
    write(
        "base.yaml",
        "data_root: data/coco/\nclasses: [a, b]\ndata: {ann: '${data_root}ann.json', cls: '${classes}'}\n",
    )
    cfg_path = write("exp.yaml", "_base_: base.yaml\ndata_root: /mnt/x/\n")
    cfg = load_config(cfg_path)
    assert cfg.data.ann == "/mnt/x/ann.json"
    assert cfg.data.cls == ["a", "b"]
    cfg = load_config(cfg_path, ["data_root=/other/"])
    assert cfg.data.ann == "/other/ann.json"


def test_reference_chain_and_list_index(write):
    cfg = load_config(
        write("a.yaml", "a: '${b}/x'\nb: '${c.0}'\nc: [root, other]\nn: '${d}'\nd: 3\n")
    )
    assert cfg.a == "root/x" and cfg.n == 3


def test_unknown_reference_names_the_using_key_and_suggests(write):
    with pytest.raises(ConfigError) as err:
        load_config(write("a.yaml", "data_root: x\nann: '${data_rot}/a.json'\n"))
    assert (
        "a.yaml:2" in str(err.value)
        and "data_rot" in str(err.value)
        and "data_root" in str(err.value)
    )


def test_reference_cycle_is_reported(write):
    with pytest.raises(ConfigError, match="cycle"):
        load_config(write("a.yaml", "a: '${b}'\nb: 'x${a}'\n"))


def test_configdict_attribute_and_item_access_keep_order(write):
    cfg = load_config(write("a.yaml", "z: 1\na: {m: [ {k: v} ]}\nb: 2\n"))
    assert isinstance(cfg, dict) and isinstance(cfg.a, ConfigDict)
    assert list(cfg) == ["z", "a", "b"]
    assert cfg["a"]["m"][0].k == "v"
    cfg.c = {"d": 1}
    assert cfg.c.d == 1
    with pytest.raises(AttributeError, match=r"Did you mean .a."):
        _ = cfg.aa


def test_configdict_dumps_roundtrip(write):
    cfg = load_config(write("a.yaml", "b: 1\na: {x: [1, 2.5, null, true, 'str']}\nempty: {}\n"))
    assert json.loads(cfg.to_json()) == cfg.to_dict()
    reloaded = load_config(write("b.yaml", cfg.to_yaml()))
    assert reloaded == cfg and list(reloaded) == ["b", "a", "empty"]


def test_configdict_dump_writes_what_a_run_records(write, tmp_path):
    cfg = load_config(write("a.yaml", "model: {type: A, ratios: [0.5, 1.0]}\nlr: 1e-4\n"))
    assert load_config(cfg.dump(tmp_path / "config.yaml")) == cfg
    assert json.loads(cfg.dump(tmp_path / "config.json").read_text()) == cfg.to_dict()

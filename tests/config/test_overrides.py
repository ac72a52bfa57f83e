"""`--set KEY.PATH=VALUE` overrides."""

from __future__ import annotations

import pytest

from detcli.config import load_config, resolve_config
from detcli.errors import ConfigError

BASE = """
optimizer: {type: SGD, lr: 0.02, momentum: 0.9}
lr_config: {step: [8, 11]}
grad_clip: null
data:
  train:
    pipeline:
      - {type: LoadImageFromFile}
      - {type: LoadAnnotations, with_bbox: true}
      - {type: Resize, img_scale: [1333, 800], keep_ratio: true}
"""


@pytest.fixture
def cfg_path(write):
    return write("exp.yaml", BASE)


def test_values_are_parsed_as_yaml(cfg_path):
    cfg = load_config(
        cfg_path,
        [
            "optimizer.lr=0.01",
            "lr_config.step=[16, 22]",
            "optimizer.momentum=null",
            "flag=true",
            "name='0.5'",
            "wd=1e-4",
            'text="a b"',
            "empty=",
        ],
    )
    assert cfg.optimizer.lr == 0.01 and cfg.lr_config.step == [16, 22]
    assert cfg.optimizer.momentum is None and cfg.flag is True and cfg.name == "0.5"
    assert cfg.wd == pytest.approx(1e-4) and cfg.text == "a b" and cfg.empty is None


def test_integer_parts_index_lists(cfg_path):
    cfg = load_config(cfg_path, ["data.train.pipeline.2.img_scale=[512,512]"])
    assert cfg.data.train.pipeline[2].img_scale == [512, 512]
    assert cfg.data.train.pipeline[2].keep_ratio is True


def test_new_keys_and_null_intermediates_are_created(cfg_path):
    cfg = load_config(cfg_path, ["new.deep.key=3", "grad_clip.max_norm=35"])
    assert cfg.new.deep.key == 3 and cfg.grad_clip == {"max_norm": 35}


def test_later_overrides_win_and_mappings_merge(cfg_path):
    cfg = load_config(
        cfg_path, ["optimizer.lr=1", "optimizer.lr=2", "optimizer={weight_decay: 0.1}"]
    )
    assert cfg.optimizer.to_dict() == {"type": "SGD", "lr": 2, "momentum": 0.9, "weight_decay": 0.1}
    cfg = load_config(cfg_path, ["optimizer={_delete_: true, type: AdamW, lr: 0.001}"])
    assert cfg.optimizer.to_dict() == {"type": "AdamW", "lr": 0.001}


def test_override_list_item_mapping_merges(cfg_path):
    cfg = load_config(cfg_path, ["data.train.pipeline.1={with_label: false}"])
    assert cfg.data.train.pipeline[1].to_dict() == {
        "type": "LoadAnnotations",
        "with_bbox": True,
        "with_label": False,
    }


def test_overrides_are_recorded_as_origins(cfg_path):
    resolved = resolve_config(cfg_path, ["optimizer.lr=0.01"])
    assert str(resolved.origin(("optimizer", "lr"))) == "--set optimizer.lr=0.01"
    assert str(resolved.origin(("optimizer", "momentum"))).endswith("exp.yaml:1")


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("optimizer.lr", "has no '='"),
        ("=3", "empty key path"),
        ("optimizer..lr=3", "empty part"),
        (
            "data.train.pipeline.7.img_scale=[1, 1]",
            "index 7 is past the end of data.train.pipeline, a list of 3",
        ),
        ("data.train.pipeline.resize.x=1", "is a list; index it with a number"),
        ("optimizer.lr.x=1", "optimizer.lr is float 0.02, not a mapping or list"),
        ("a=[1, 2", "invalid YAML"),
    ],
)
def test_bad_overrides_are_clear_errors(cfg_path, override, expected):
    with pytest.raises(ConfigError) as err:
        load_config(cfg_path, [override])
    assert expected in str(err.value)

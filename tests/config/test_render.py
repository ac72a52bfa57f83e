"""Printing configs: YAML, JSON, and `--show-origin`."""

from __future__ import annotations

import json
import re

import yaml

from detcli.config import render_config, resolve_config
from detcli.config.yaml_source import ConfigLoader


def _tree(write):
    write(
        "configs/_base_/model.yaml",
        """
        model:
          type: FasterRCNN
          backbone: {type: ResNet, depth: 50}
          anchor:
            ratios: [0.5, 1.0, 2.0]
        data_root: data/coco/
        data:
          train:
            ann_file: ${data_root}train.json
            pipeline:
              - {type: LoadImageFromFile}
              - type: Resize
                img_scale: [1333, 800]
    """,
    )
    return write(
        "configs/exp.yaml",
        """
        _base_: _base_/model.yaml
        model:
          backbone:
            depth: 101
    """,
    )


def test_show_origin_marks_every_leaf_with_file_line_or_set(write):
    resolved = resolve_config(
        _tree(write), ["data.train.pipeline.1.img_scale=[512,512]", "data_root=/d/"]
    )
    text = render_config(resolved, "yaml", show_origin=True)
    lines = {
        line.split("#")[0].strip(): line.split("#", 1)[1].strip()
        for line in text.splitlines()
        if "#" in line
    }
    assert lines["type: FasterRCNN"].endswith("_base_/model.yaml:2")
    assert lines["depth: 101"].endswith("configs/exp.yaml:4")
    assert lines["ratios: [0.5, 1.0, 2.0]"].endswith("_base_/model.yaml:5")
    assert lines["img_scale: [512, 512]"] == "--set data.train.pipeline.1.img_scale=[512,512]"
    assert lines["- type: LoadImageFromFile"].endswith("_base_/model.yaml:11")
    assert lines["ann_file: /d/train.json"].startswith(
        lines["type: FasterRCNN"].replace(":2", ":9")
    )
    assert "via ${data_root} from --set data_root=/d/" in lines["ann_file: /d/train.json"]
    # every leaf carries a comment, and the annotated text is still the same config
    leaf_lines = [
        line
        for line in text.splitlines()
        if not line.rstrip().endswith(":") and line.strip() != "-"
    ]
    assert all(" # " in line for line in leaf_lines)
    assert yaml.load(text, Loader=ConfigLoader) == resolved.cfg.to_dict()


def test_plain_yaml_and_json_round_trip(write):
    resolved = resolve_config(_tree(write))
    assert yaml.load(render_config(resolved, "yaml"), Loader=ConfigLoader) == resolved.cfg.to_dict()
    assert json.loads(render_config(resolved, "json")) == resolved.cfg.to_dict()
    assert "ratios: [0.5, 1.0, 2.0]" in render_config(resolved, "yaml")


def test_json_show_origin_is_a_flat_map(write):
    resolved = resolve_config(_tree(write), ["model.backbone.depth=18"])
    leaves = json.loads(render_config(resolved, "json", show_origin=True))
    assert leaves["model.backbone.depth"] == {
        "value": 18,
        "origin": "--set model.backbone.depth=18",
    }
    assert re.search(r"model\.yaml:5$", leaves["model.anchor.ratios"]["origin"])
    assert leaves["data.train.pipeline.1.img_scale"]["value"] == [1333, 800]

"""MMDetection `.py` configs: read without running them, merged as mmengine merges them.

The fixtures under tests/fixtures/mmdet_py/ are `.py` chains in MMDetection's style; their
`expected/*.json` is mmengine 0.10.7's own `Config.fromfile` output (see the README there).
"""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest

from conftest import run_detcli
from detcli.config import load_config, resolve_config

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "mmdet_py"
EXPECTED = sorted((FIXTURES / "expected").glob("*.json"))


def _line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


@pytest.mark.parametrize("expected", EXPECTED, ids=lambda p: p.stem)
def test_merge_equals_mmengines_own(expected):
    record = json.loads(expected.read_text())
    merged = load_config(FIXTURES / record["config"]).to_dict()
    assert merged == record["merged"]  # tuples are lists on both sides (JSON has no tuples)


def test_every_fixture_config_has_its_mmengine_output():
    configs = {json.loads(p.read_text())["config"] for p in EXPECTED}
    assert {"mmdet2/hrnet/faster_rcnn_hrnetv2p_w32_1x_coco.py", "mmdet3/trash.py"} <= configs
    assert len(EXPECTED) == 7


def test_py_semantics_users_see(write):
    base = write(
        "base.py",
        """
        data_root = 'data/coco/'
        val_dataloader = dict(batch_size=1, dataset=dict(ann_file=data_root + 'val.json'))
        test_dataloader = val_dataloader  # a copy, as in MMDetection
        model = dict(type='FasterRCNN', backbone=dict(type='ResNet', depth=50, out_indices=(0, 1)))
        """,
    )
    child = write(
        "child.py",
        """
        _base_ = ['./base.py']
        val_dataloader = dict(batch_size=4)
        model = dict(backbone=dict(depth=101))   # merges into the base's model
        depth = {{_base_.model.backbone.depth}}  # the base's value, not the merged one
        ann = _base_.val_dataloader.dataset.ann_file
        __private = 1
        scales = [*[(1333, 800)], (1000, 600)] + [(512, 512)]
        """,
    )
    cfg = load_config(child, ["data_root=/elsewhere/"])
    assert cfg.model.backbone == {"type": "ResNet", "depth": 101, "out_indices": [0, 1]}
    assert cfg.val_dataloader.batch_size == 4 and cfg.test_dataloader.batch_size == 1
    assert cfg.depth == 50 and cfg.ann == "data/coco/val.json"
    # no late binding: --set data_root does not move paths the .py file already joined
    assert cfg.data_root == "/elsewhere/"
    assert cfg.test_dataloader.dataset.ann_file == "data/coco/val.json"
    assert "__private" not in cfg and "_base_" not in cfg
    assert cfg.scales == [[1333, 800], [1000, 600], [512, 512]]
    assert base.exists()


def test_show_origin_points_at_py_lines(cli):
    trash = FIXTURES / "mmdet3" / "trash.py"
    schedule = FIXTURES / "mmdet3" / "_base_" / "schedules" / "schedule_1x.py"
    result = cli("print-config", str(trash), "--show-origin", "--format", "json")
    assert result.code == 0, result.err
    leaves = json.loads(result.out)
    assert leaves["train_cfg.max_epochs"]["value"] == 8
    assert leaves["train_cfg.max_epochs"]["origin"].endswith(
        f"trash.py:{_line_of(trash, 'train_cfg = dict(max_epochs=8)')}"
    )
    assert leaves["train_cfg.val_interval"]["origin"].endswith(
        f"schedule_1x.py:{_line_of(schedule, 'val_interval=1')}"
    )
    assert leaves["work_dir"]["value"] == "./work_dirs/trash"  # {{ fileBasenameNoExtension }}


def test_yaml_and_py_bases_mix_both_ways():
    over = resolve_config(FIXTURES / "mixed" / "over_py.yaml")
    assert over.cfg.model.roi_head.bbox_head.num_classes == 3  # YAML child of a .py
    assert over.cfg.seed == 2022  # the .py read its YAML base's variable
    assert [f.name for f in over.files[:2]] == ["over_py.yaml", "child.py"]


REFUSED = [
    ("import os\n", 1, 1, "an import"),
    ("from mmdet.models import FasterRCNN\n", 1, 1, "an import"),
    (
        "x = 1\nmodel = dict(a=open('/tmp/x').read())\n",
        2,
        16,
        "a call to `open('/tmp/x').read(...)`",
    ),
    ("x = list(range(3))\n", 1, 5, "a call to `list(...)`"),
    ("a = dict(b=1)\nc = a.b\n", 2, 5, "attribute access"),
    ("a = [1, 2]\nb = a[0]\n", 2, 5, "a subscript"),
    ("a = [i for i in (1, 2)]\n", 1, 5, "a list comprehension"),
    ("a = lambda: 1\n", 1, 5, "a lambda"),
    ("x = 1\nb = f'{x}.json'\n", 2, 5, "an f-string"),
    ("if True:\n    a = 1\n", 1, 1, "an `if` statement"),
    ("for i in (1,):\n    pass\n", 1, 1, "a `for` loop"),
    ("def f():\n    return 1\n", 1, 1, "a function definition"),
    ("class A:\n    pass\n", 1, 1, "a class definition"),
    ("with x:\n    pass\n", 1, 1, "a `with` statement"),
    ("a = 1\na += 1\n", 2, 1, "an augmented assignment"),
    ("a = dict()\na.b = 1\n", 2, 1, "assigning into a dict"),
    ("custom_imports = dict(imports=['my_module'])\n", 1, 1, "docs/plugins.md"),
    (
        "from mmengine.config import read_base\nwith read_base():\n    from .base import *\n",
        1,
        1,
        "mmengine's new-style lazy config",
    ),
    ("a = 1 if True else 2\n", 1, 5, "a conditional expression"),
    ("a = {1, 2}\n", 1, 5, "a set"),
    ("a = 'x' * 3\n", 1, 5, "`*` on a string and an int"),
]


@pytest.mark.parametrize(("text", "line", "col", "construct"), REFUSED, ids=lambda v: str(v)[:20])
def test_refused_constructs_name_file_line_column_and_exit_2(
    write, cli, text, line, col, construct
):
    path = write("bad.py", text)
    result = cli("print-config", str(path))
    assert result.code == 2
    assert f"bad.py:{line}:{col}" in result.err
    assert construct in result.err.replace("\n", " ")
    assert "Traceback" not in result.err


def test_a_config_never_runs_code(write, tmp_path):
    marker = tmp_path / "marker"
    path = write("evil.py", f"x = __import__('pathlib').Path({str(marker)!r}).touch()\n")
    result = run_detcli("print-config", str(path))  # the real console script, a real process
    assert result.code == 2 and "evil.py:1:5" in result.err and "Traceback" not in result.err
    assert not marker.exists()


def test_syntax_error_and_unknown_name_are_located(write, cli):
    bad = cli("check", str(write("syntax.py", "model = dict(\n    type='X',,\n)\n")))
    assert bad.code == 2 and "syntax.py:2:14" in bad.err and "syntax error" in bad.err
    write("base.py", "data_root = 'data/'\n")
    unknown = cli("print-config", str(write("c.py", "_base_ = 'base.py'\nx = data_root + 'a'\n")))
    assert unknown.code == 2 and "c.py:2:5" in unknown.err
    assert "_base_.data_root" in unknown.err  # says how to read a base's variable


def test_mmengine_refusals_are_kept(write):
    write("a.py", "lr = 0.1\n")
    write("b.py", "lr = 0.2\nmodel = 1\n")
    with pytest.raises(Exception, match="set by two base files"):
        load_config(write("two.py", "_base_ = ['a.py', 'b.py']\n"))
    with pytest.raises(Exception, match=r"dict_over\.py:2.*_delete_=True"):
        load_config(write("dict_over.py", "_base_ = 'b.py'\nmodel = dict(a=1)\n"))
    assert load_config(write("ok.py", "_base_ = 'b.py'\nmodel = dict(_delete_=True, a=1)\n"))


def _copy_fixtures(tmp_path: Path) -> Path:
    root = tmp_path / "mmdet_py"
    shutil.copytree(FIXTURES, root, ignore=shutil.ignore_patterns("expected"))
    return root


@pytest.mark.parametrize(
    "config", ["mmdet3/trash.py", "mmdet2/hrnet/faster_rcnn_hrnetv2p_w32_1x_coco.py"]
)
def test_convert_recursive_then_print_gives_the_same_config(tmp_path, cli, config):
    root = _copy_fixtures(tmp_path)
    py = root / config
    out = py.with_suffix(".yaml")
    converted = cli("convert-config", str(py), "-o", str(out), "--recursive")
    assert converted.code == 0, converted.err
    assert (root / "mmdet2/_base_/models/faster_rcnn_r50_fpn.yaml").is_file()  # a base's base
    for f in root.rglob("*.py"):  # the .py files are no longer needed: prove it
        f.unlink()
    from_yaml = cli("print-config", str(out), "--format", "json")
    assert from_yaml.code == 0, from_yaml.err
    expected = next(json.loads(p.read_text()) for p in EXPECTED if config in p.read_text())
    assert json.loads(from_yaml.out) == expected["merged"]


def test_convert_keeps_the_base_structure_and_prints_to_stdout(tmp_path, cli):
    root = _copy_fixtures(tmp_path)
    x101 = root / "mmdet2/faster_rcnn/faster_rcnn_x101_64x4d_fpn_1x_coco.py"
    result = cli("convert-config", str(x101))
    assert result.code == 0, result.err
    import yaml

    data = yaml.safe_load(result.out)
    assert list(data) == ["_base_", "model"]  # the file's own keys only
    assert data["_base_"] == "faster_rcnn_r50_fpn_1x_coco.yaml"
    assert data["model"]["backbone"]["out_indices"] == [0, 1, 2, 3]
    assert "--recursive" in result.err  # the bases still need converting


def test_convert_inlines_base_references_and_keeps_hand_written_yaml(tmp_path, cli):
    root = _copy_fixtures(tmp_path)
    trash = root / "mmdet3/trash.py"
    printed = cli("convert-config", str(trash))
    assert "test_pipeline:\n- type: LoadImageFromFile" in printed.out  # {{_base_.test_pipeline}}
    assert "__scale" not in printed.out and "{{" not in printed.out
    hand_written = root / "mmdet3/faster_rcnn/faster-rcnn_r50_fpn_1x_coco.yaml"
    hand_written.write_text("# mine\n")
    refused = cli("convert-config", str(trash), "-o", str(tmp_path / "t.yaml"), "--recursive")
    assert refused.code == 2 and "was not written by convert-config" in refused.err
    assert hand_written.read_text() == "# mine\n"
    assert cli("convert-config", str(root / "mixed/over_py.yaml")).code == 2


def test_a_py_chain_checks_and_trains(tmp_path, cli):
    from detcli.data.synthetic import write_shapes_coco
    from detcli.engine.training import train

    shapes = tmp_path / "shapes"
    write_shapes_coco(shapes, num_images=4, image_size=128, split="train", seed=1)
    write_shapes_coco(shapes, num_images=2, image_size=128, split="val", seed=1)
    base = FIXTURES / "mmdet3/faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py"
    config = tmp_path / "shapes_3x.py"
    config.write_text(
        textwrap.dedent(f"""
        _base_ = {str(base)!r}
        data_root = {str(shapes) + "/"!r}
        metainfo = dict(classes=('square', 'circle', 'triangle'))
        model = dict(backbone=dict(init_cfg=None), roi_head=dict(bbox_head=dict(num_classes=3)))
        train_pipeline = [
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', with_bbox=True),
            dict(type='Resize', scale=(128, 128), keep_ratio=True),
            dict(type='PackDetInputs'),
        ]
        test_pipeline = [
            dict(type='LoadImageFromFile'),
            dict(type='Resize', scale=(128, 128), keep_ratio=True),
            dict(type='LoadAnnotations', with_bbox=True),
            dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape',
                                                  'img_shape', 'scale_factor')),
        ]
        train_dataloader = dict(
            batch_size=2, num_workers=0, persistent_workers=False,
            dataset=dict(data_root=data_root, metainfo=metainfo, ann_file='train.json',
                         data_prefix=dict(img='train/'), pipeline=train_pipeline))
        val_dataloader = dict(
            num_workers=0, persistent_workers=False,
            dataset=dict(data_root=data_root, metainfo=metainfo, ann_file='val.json',
                         data_prefix=dict(img='val/'), pipeline=test_pipeline))
        test_dataloader = val_dataloader
        val_evaluator = dict(ann_file=data_root + 'val.json')
        test_evaluator = val_evaluator
        train_cfg = dict(max_epochs=1)
        param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=3)]
        default_hooks = dict(logger=dict(interval=1))
        randomness = dict(seed=0)
        """),
        encoding="utf-8",
    )
    checked = cli("check", str(config))
    assert checked.code == 0, checked.out
    run = train(config, work_dir=tmp_path / "work", device="cpu", deterministic=True)
    assert run.iter == 2 and run.last_checkpoint is not None
    assert "bbox_mAP" in run.metrics


def test_readme_py_config_example_runs(tmp_path, cli, monkeypatch):
    readme = (FIXTURES.parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Your .py configs", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    example = section.split("```python\n", 1)[1].split("```", 1)[0]
    name = example.splitlines()[0].removeprefix("# ").split(":")[0]
    (tmp_path / "configs").symlink_to(FIXTURES.parents[2] / "configs")
    (tmp_path / name).write_text(example, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    commands = [line[2:] for line in section.splitlines() if line.startswith("$ detcli ")]
    assert len(commands) == 4
    for command in commands:
        args = command.split()[1:]
        result = cli(*args)
        # `check` names the trash data files, absent here: exit 2 with the problems listed
        assert result.code in ((0, 2) if args[0] == "check" else (0,)), (command, result.err)
        assert "Traceback" not in result.err
    assert load_config("my_trash.yaml") == load_config(name)
    assert load_config(name).train_cfg.max_epochs == 8

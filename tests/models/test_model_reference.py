"""Models build and compute as they did before issue 15 changed how they are built.

The reference numbers were recorded by tests/fixtures/model_reference/make_reference.py with
the model code as it was before: every config's parameter names and shapes (so old checkpoints
load), and a Faster R-CNN's losses and detections for fixed weights and inputs.
"""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest
import torch
from model_helpers import REPO

from detcli.plugins import load_plugins

HERE = REPO / "tests" / "fixtures" / "model_reference"


def _script():
    spec = importlib.util.spec_from_file_location("make_reference", HERE / "make_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_reference"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def make_reference():
    load_plugins()
    return _script()


SHAPES = json.loads((HERE / "parameter_shapes.json").read_text())


@pytest.mark.parametrize("config", sorted(SHAPES))
def test_every_config_builds_the_same_parameters(make_reference, config):
    cfg = make_reference.model_section(REPO / config)
    with torch.device("meta"):
        model = make_reference.build(cfg)
    shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
    assert shapes == SHAPES[config]


def test_losses_and_detections_are_unchanged_for_fixed_weights(make_reference):
    expected = json.loads((HERE / "narrow_r18_numbers.json").read_text())
    cfg = make_reference.model_section(make_reference.NARROW)
    tiny = make_reference.model_section(make_reference.model_configs()[0])
    model = make_reference.build({**cfg, "train_cfg": tiny["train_cfg"]})
    from detcli.engine.checkpoint import load_checkpoint, weights_of
    from detcli.models.checkpoint_import import import_weights

    checkpoint = load_checkpoint(make_reference.WEIGHTS)
    imported = import_weights(checkpoint, weights_of(checkpoint), model.state_dict().keys())
    model.load_state_dict(imported.weights)
    got = make_reference.numbers(model)
    assert got["losses"] == pytest.approx(expected["losses"], rel=1e-5, abs=1e-6)
    for mine, ref in zip(got["detections"], expected["detections"], strict=True):
        assert mine["labels"] == ref["labels"]
        torch.testing.assert_close(torch.tensor(mine["boxes"]), torch.tensor(ref["boxes"]))
        torch.testing.assert_close(torch.tensor(mine["scores"]), torch.tensor(ref["scores"]))

"""Gradient accumulation (mmengine's `optim_wrapper.accumulative_counts`): N small batches
step like one big one, the last short window of a run still steps, and resume is exact."""

from __future__ import annotations

import contextlib
import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from detcli.engine import train
from detcli.engine.optim_wrapper import AmpSettings, OptimWrapper
from detcli.errors import ConfigError

from .engine_helpers import REPO, read_jsonl

WORKER = Path(__file__).with_name("dist_worker.py")  # detcli.train + each rank's final weights

X = torch.tensor([[1.0, 2.0, -1.0], [0.5, -1.5, 2.0], [-2.0, 0.3, 0.7], [1.2, 1.1, -0.4]])
Y = torch.tensor([[1.0], [-1.0], [0.5], [2.0]])


def _model() -> nn.Linear:
    torch.manual_seed(0)
    return nn.Linear(3, 1)


def _wrapper(model: nn.Module, counts: int, **kwargs) -> OptimWrapper:
    sgd = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=0.01)
    return OptimWrapper(sgd, accumulative_counts=counts, **kwargs)


def _loss(model: nn.Module, rows: slice) -> torch.Tensor:
    return (model(X[rows]) - Y[rows]).pow(2).mean()  # a mean over the batch, as detectors'


def _params(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_two_batches_of_one_step_like_one_batch_of_two():
    big, small = _model(), _model()
    big_opt, small_opt = _wrapper(big, 1), _wrapper(small, 2)
    for start in (0, 2):  # two optimizer steps each
        big_opt.update(_loss(big, slice(start, start + 2)))
        before = _params(small).clone()
        assert small_opt.update(_loss(small, slice(start, start + 1))) == {}
        assert torch.equal(_params(small), before)  # first of the window: no step yet...
        assert all(p.grad is not None for p in small.parameters())  # ...gradients kept
        small_opt.update(_loss(small, slice(start + 1, start + 2)))
        assert not torch.equal(_params(small), before)
        assert all(p.grad is None for p in small.parameters())  # zeroed after the step
        torch.testing.assert_close(_params(small), _params(big), rtol=0, atol=1e-6)


def test_the_last_short_window_steps_with_its_own_length():
    """3 iterations with N=2: (a+b)/2 steps at 2, then c alone (factor 1, not 2) steps at 3."""
    reference, model = _model(), _model()
    ref_opt, opt = _wrapper(reference, 1), _wrapper(model, 2)
    opt.initialize_count_status(0, 3)
    ref_opt.update(_loss(reference, slice(0, 2)))
    ref_opt.update(_loss(reference, slice(2, 3)))
    for i in range(3):
        opt.update(_loss(model, slice(i, i + 1)))
    assert opt.inner_count == 3 and all(p.grad is None for p in model.parameters())
    torch.testing.assert_close(_params(model), _params(reference), rtol=0, atol=1e-6)


def test_clipping_and_amp_scaler_act_on_the_summed_window_only():
    """float16 loss scaling: the scaler unscales and steps once per window, so a window with
    clipping equals the un-scaled one; grad_norm is reported on the stepping iteration only."""
    plain, scaled = _model(), _model()
    clip = {"max_norm": 0.1}
    plain_opt = _wrapper(plain, 2, clip_grad=clip)
    scaled_opt = _wrapper(scaled, 2, clip_grad=clip, amp=AmpSettings(torch.float16, 1024.0))
    assert scaled_opt.scaler is not None
    logs = []
    for i in range(4):
        plain_opt.update(_loss(plain, slice(i, i + 1)))
        logs.append(scaled_opt.update(_loss(scaled, slice(i, i + 1))))
    assert [sorted(log) for log in logs] == [[], ["grad_norm", "loss_scale"]] * 2
    assert float(logs[1]["loss_scale"]) == 1024.0  # no overflow: the fixed scale stays
    torch.testing.assert_close(_params(scaled), _params(plain), rtol=0, atol=1e-6)


def test_state_dict_keeps_a_windows_pending_gradients():
    """A checkpoint written inside a window resumes to exactly the uninterrupted result."""
    whole = _model()
    whole_opt = _wrapper(whole, 2)
    whole_opt.initialize_count_status(0, 4)
    whole_opt.update(_loss(whole, slice(0, 1)))
    saved_weights = copy.deepcopy(whole.state_dict())
    saved = copy.deepcopy(whole_opt.state_dict())
    assert saved["accumulation"]["inner_count"] == 1 and saved["accumulation"]["grads"]
    whole_opt.update(_loss(whole, slice(1, 2)))

    resumed = _model()
    resumed.load_state_dict(saved_weights)
    resumed_opt = _wrapper(resumed, 2)
    resumed_opt.load_state_dict(saved)
    resumed_opt.initialize_count_status(1, 4)  # what Runner.run does after a resume
    resumed_opt.update(_loss(resumed, slice(1, 2)))
    assert torch.equal(_params(resumed), _params(whole))


class _FakeDDP(nn.Linear):
    """Records whether the forward ran under `no_sync` (as DistributedDataParallel's)."""

    def __init__(self):
        super().__init__(3, 1)
        self.synced: list[bool] = []
        self._in_no_sync = False

    @contextlib.contextmanager
    def no_sync(self):
        self._in_no_sync = True
        try:
            yield
        finally:
            self._in_no_sync = False

    def forward(self, x):
        self.synced.append(not self._in_no_sync)
        return super().forward(x)


def test_only_the_stepping_iteration_synchronises_gradients():
    model = _FakeDDP()
    opt = _wrapper(model, 3)
    opt.initialize_count_status(0, 5)  # windows: 1-3, then the short 4-5
    for i in range(5):
        with opt.optim_context(model):
            loss = _loss(model, slice(i % 4, i % 4 + 1))
        opt.update(loss)
    assert model.synced == [False, False, True, False, True]


@pytest.mark.parametrize("bad", [0, -2, 1.5, True])
def test_accumulative_counts_must_be_a_positive_integer(bad):
    with pytest.raises(ConfigError, match="accumulative_counts"):
        _wrapper(_model(), bad)


ITER_RUN = """
runner: {_delete_: true, type: IterBasedRunner, max_iters: 3}
data: {samples_per_gpu: 1}
evaluation: null
checkpoint_config: {interval: 1, max_keep_ckpts: -1}
optim_wrapper: {accumulative_counts: 2}
"""


def test_training_accumulates_and_resumes_inside_a_window(tiny_config, tmp_path):
    """detcli.train with N=2 over 3 iterations: steps at 2 and 3 (grad_norm logged only there);
    a resume from iteration 1 (mid-window) ends bit-identical to the uninterrupted run."""
    config = tiny_config(ITER_RUN)
    whole = tmp_path / "whole"
    train(config, work_dir=whole, device="cpu", deterministic=True)
    records = {r["iter"]: r for r in read_jsonl(whole / "log.jsonl") if r["mode"] == "train"}
    assert ["grad_norm" in records[i] for i in (1, 2, 3)] == [False, True, True]
    first = torch.load(whole / "iter_1.pth", weights_only=True)
    assert first["accumulation"]["inner_count"] == 1 and first["accumulation"]["grads"]

    resumed = tmp_path / "resumed"
    train(config, work_dir=resumed, resume=whole / "iter_1.pth", device="cpu", deterministic=True)
    a = torch.load(resumed / "iter_3.pth", weights_only=True)
    b = torch.load(whole / "iter_3.pth", weights_only=True)
    for name, value in b["state_dict"].items():
        assert torch.equal(a["state_dict"][name], value), name


def test_two_ranks_accumulate_and_end_with_the_same_weights(tiny_config, tmp_path):
    """DDP (2 Gloo processes): the in-window iterations skip the all-reduce (no_sync), the
    stepping one synchronises the summed gradients, so both ranks step identically."""
    config = tiny_config(
        """
        runner: {_delete_: true, type: IterBasedRunner, max_iters: 4}
        data: {samples_per_gpu: 1}
        evaluation: null
        checkpoint_config: null
        optim_wrapper: {accumulative_counts: 2}
        """
    )
    work = tmp_path / "work"
    launcher = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    proc = subprocess.run(
        [sys.executable, *launcher, str(WORKER), str(config), str(work)],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    rank0 = torch.load(work / "rank0.pt", weights_only=True)
    rank1 = torch.load(work / "rank1.pt", weights_only=True)
    for name, value in rank0.items():
        assert torch.equal(value, rank1[name]), name
    records = {r["iter"]: r for r in read_jsonl(work / "log.jsonl") if r["mode"] == "train"}
    assert ["grad_norm" in records[i] for i in (1, 2, 3, 4)] == [False, True, False, True]

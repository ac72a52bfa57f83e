"""Evaluation test fixtures: one torch thread, the session's tiny trained checkpoint."""

from __future__ import annotations

import pytest

from .eval_helpers import Trained, trained_checkpoint


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One intra-op thread: the tiny model gains nothing from two on a shared 2-core machine."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """The tiny detector trained for one epoch on 8 synthetic images (see eval_helpers)."""
    return trained_checkpoint(tmp_path_factory)

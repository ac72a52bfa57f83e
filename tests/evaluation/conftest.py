"""Evaluation test fixtures: the session's tiny trained checkpoint."""

from __future__ import annotations

import pytest

from .eval_helpers import Trained, trained_checkpoint


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """The tiny detector trained for one epoch on 8 synthetic images (see eval_helpers)."""
    return trained_checkpoint(tmp_path_factory)

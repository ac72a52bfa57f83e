"""Configs a user can get wrong: each a clear ConfigError naming the file (and line)."""

from __future__ import annotations

import pytest

from detcli.config import load_config
from detcli.errors import ConfigError


def _error(path, overrides=()):
    with pytest.raises(ConfigError) as err:
        load_config(path, overrides)
    return str(err.value)


def test_malformed_yaml_gives_file_line_and_column(write):
    path = write("bad.yaml", "model:\n  type: FPN\n  in_channels: [256, 512\nneck: 1\n")
    message = _error(path)
    assert "bad.yaml:4:" in message and "invalid YAML" in message


def test_tab_indentation_is_located(write):
    message = _error(write("tab.yaml", "a:\n\tb: 1\n"))
    assert "tab.yaml:2:1" in message


def test_missing_base_names_the_including_line(write):
    path = write("exp.yaml", "a: 1\n_base_:\n  - nothere.yaml\n")
    message = _error(path)
    assert "nothere.yaml" in message and "does not exist" in message and "exp.yaml:3" in message


def test_missing_config_file():
    assert "does not exist" in _error("no/such/config.yaml")


def test_base_cycle_prints_the_chain(write):
    write("a.yaml", "_base_: b.yaml\n")
    write("b.yaml", "_base_: c.yaml\n")
    write("c.yaml", "_base_: a.yaml\n")
    message = _error(write("a.yaml", "_base_: b.yaml\n"))
    assert "cycle" in message
    assert message.index("a.yaml") < message.index("b.yaml") < message.index("c.yaml")
    assert message.count("a.yaml") == 2


def test_root_must_be_a_mapping(write):
    assert "must be a mapping" in _error(write("list.yaml", "- a\n- b\n"))
    assert "must be a mapping" in _error(write("scalar.yaml", "42\n"))


def test_base_must_be_paths(write):
    assert "`_base_` must be" in _error(write("a.yaml", "_base_: {a: 1}\n"))


def test_unsafe_tags_never_execute(write):
    path = write("evil.yaml", "a: !!python/object/apply:os.system ['echo hacked']\n")
    assert "evil.yaml:1" in _error(path)


def test_multiple_documents_rejected(write):
    assert "single document" in _error(write("multi.yaml", "a: 1\n---\nb: 2\n"))


def test_empty_file_is_an_empty_config(write):
    assert load_config(write("empty.yaml", "")) == {}

"""Configs a hostile (or unlucky) user writes: alias bombs, recursive aliases, dates, tags."""

from __future__ import annotations

import json

BOMB = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(
            f"{x}: &{x} [{', '.join([f'*{p}'] * 9)}]"
            for p, x in zip("abcdefg", "bcdefgh", strict=True)
        ),
    ]
)


def test_alias_bomb_and_recursive_alias_are_refused_quickly(cli, tmp_path):
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(BOMB + "\n", encoding="utf-8")  # 9**8 = 43 million strings if expanded
    result = cli("print-config", str(bomb))
    assert result.code == 2 and "more than 100,000 values" in result.err
    assert "Traceback" not in result.err
    loop = tmp_path / "loop.yaml"
    loop.write_text("a: &a [*a]\n", encoding="utf-8")
    result = cli("check", str(loop))
    assert result.code == 2 and "deeper than 64 levels" in result.err


def test_dates_stay_text_and_other_tags_are_refused(cli, tmp_path):
    path = tmp_path / "d.yaml"
    path.write_text("date: 2024-05-01\nwhen: 2024-05-01 10:00:00\n", encoding="utf-8")
    result = cli("print-config", str(path), "--format", "json")
    assert result.code == 0
    assert json.loads(result.out) == {"date": "2024-05-01", "when": "2024-05-01 10:00:00"}
    binary = tmp_path / "b.yaml"
    binary.write_text("blob: !!binary aGVsbG8=\n", encoding="utf-8")
    result = cli("print-config", str(binary))
    assert result.code == 2 and "b.yaml:1" in result.err and "binary" in result.err

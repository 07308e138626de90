"""iterit.utils.progress: a bar only when asked for, with tqdm, on the main process."""

from __future__ import annotations

import pytest

from iterit.utils import progress as pg

pytest.importorskip("tqdm")


def test_no_bar_when_not_asked(capsys):
    items = [1, 2, 3]
    assert pg.progress(items, desc="x", enabled=False) is items
    with pg.progress_bar(desc="x", total=3, enabled=False) as bar:
        bar.update(3)
    assert capsys.readouterr().err == ""


def test_a_bar_on_the_main_process(capsys, monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    assert list(pg.progress(range(3), desc="counting", enabled=True)) == [0, 1, 2]
    assert "counting" in capsys.readouterr().err


def test_no_bar_on_another_rank(capsys, monkeypatch):
    monkeypatch.setenv("RANK", "1")  # a torchrun worker before its process group exists
    assert not pg.shows_progress(True)
    assert list(pg.progress(range(3), desc="counting", enabled=True)) == [0, 1, 2]
    assert capsys.readouterr().err == ""

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


def test_phase_bars_follow_the_selector(capsys, monkeypatch):
    import iterit

    monkeypatch.delenv("RANK", raising=False)
    texts = ["the cat sat", "a dog ran far", "the cat ran", "birds fly high"]
    with pg.phase_progress(enabled=True) as report:
        assert report is not None
        sel = iterit.select(texts, None, 2, progress=report)
    err = capsys.readouterr().err
    assert sel.indices.shape == (2,)
    for phase in ("n-grams", "TF-IDF", "greedy"):
        assert f"{phase}:" in err
    assert "greedy:   0%|          | 0/2" in err  # one step per pick


def test_no_phase_bars_when_not_asked(capsys):
    with pg.phase_progress(enabled=False) as report:
        assert report is None
    assert capsys.readouterr().err == ""


def test_silenced_bars_quiet_other_libraries_bars(capsys):
    from tqdm.auto import tqdm

    with pg.silenced_bars():
        assert list(tqdm(range(3), desc="library-bar")) == [0, 1, 2]
        assert capsys.readouterr().err == ""
        list(tqdm(range(3), desc="chosen-bar", disable=False))  # a caller's own choice stands
        assert "chosen-bar" in capsys.readouterr().err
    list(tqdm(range(3), desc="after"))
    assert "after" in capsys.readouterr().err


def test_silenced_bars_can_be_off(capsys):
    from tqdm.auto import tqdm

    with pg.silenced_bars(enabled=False):
        list(tqdm(range(3), desc="still-shown"))
    assert "still-shown" in capsys.readouterr().err
